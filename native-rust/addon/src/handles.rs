//! Handles: plain JS numbers that name a native object, and the generation-checked table behind
//! them (docs/raw-contract.md, "Handles"). Pure Rust, no Node-API: unit-tested with `cargo test`.
//!
//! ```text
//! bit 52 ........ 45 | 44 .. 41 | 40 ........ 22 | 21 ......... 0
//!       env (8)       | tag (4)  | generation(19) |  slot (22)
//! tag = backend << 2 | kind       backend: cpp = 1, rust = 2     kind: string = 1, subscription = 2, producer = 3
//! ```
//!
//! A slot is an `Option<T>`: releasing takes the value out (`Option::take`) and bumps the slot's
//! generation, so a second release or a use after release is a reported error, never a dangling
//! pointer. The table is generic over its payload: one table per kind (strings, subscriptions, producers).

const SLOT_BITS: u32 = 22;
const GENERATION_BITS: u32 = 19;
const TAG_BITS: u32 = 4;
const ENV_BITS: u32 = 8;

const GENERATION_SHIFT: u32 = SLOT_BITS;
const TAG_SHIFT: u32 = GENERATION_SHIFT + GENERATION_BITS;
const ENV_SHIFT: u32 = TAG_SHIFT + TAG_BITS;

/// Number of addressable slots per table (2^22).
pub const MAX_SLOTS: usize = 1 << SLOT_BITS;
/// A slot whose generation reaches this value is retired: never reused, so no stale handle can
/// alias a newer object.
pub const RETIRED_GENERATION: u32 = (1 << GENERATION_BITS) - 1;
/// Every handle is below 2^53, so it is exactly representable as a JS number.
pub const HANDLE_LIMIT: u64 = 1 << (ENV_SHIFT + ENV_BITS);

const _: () = assert!(HANDLE_LIMIT == 1 << 53);

/// Which addon issued a handle (the high two bits of the tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Cpp = 1,
    Rust = 2,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpp => "cpp",
            Backend::Rust => "rust",
        }
    }
}

/// What a handle names (the low two bits of the tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String = 1,
    Subscription = 2,
    Producer = 3,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Subscription => "subscription",
            Kind::Producer => "producer",
        }
    }
}

/// A handle split into its fields. Fields are not validated here; see [`Handle::classify`]. The default (all
/// zeros) is never issued: generation 0 does not exist.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    pub env: u8,
    pub tag: u8,
    pub generation: u32,
    pub slot: u32,
}

/// Why a handle does not name something this addon can look up. The binding maps each to the
/// contract's error; the order of checks is the contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleError {
    /// Issued by the other addon: `ERR_FOREIGN_HANDLE`.
    Foreign(Backend),
    /// Wrong kind, unknown backend, never issued: `ERR_INVALID_HANDLE`.
    Invalid,
    /// Issued by this addon in another environment: `ERR_FOREIGN_ENV`.
    ForeignEnv,
    /// Issued here, but the object was released since: per function.
    Released,
}

impl Handle {
    pub fn new(env: u8, backend: Backend, kind: Kind, generation: u32, slot: u32) -> Self {
        debug_assert!(generation < RETIRED_GENERATION && (slot as usize) < MAX_SLOTS);
        Handle { env, tag: ((backend as u8) << 2) | kind as u8, generation, slot }
    }

    /// Splits a value already known to be an integer in `[0, 2^53)`.
    pub fn decode(value: u64) -> Self {
        debug_assert!(value < HANDLE_LIMIT);
        let field = |shift: u32, bits: u32| (value >> shift) & ((1 << bits) - 1);
        Handle {
            env: field(ENV_SHIFT, ENV_BITS) as u8,
            tag: field(TAG_SHIFT, TAG_BITS) as u8,
            generation: field(GENERATION_SHIFT, GENERATION_BITS) as u32,
            slot: field(0, SLOT_BITS) as u32,
        }
    }

    pub fn encode(self) -> u64 {
        (u64::from(self.env) << ENV_SHIFT)
            | (u64::from(self.tag) << TAG_SHIFT)
            | (u64::from(self.generation) << GENERATION_SHIFT)
            | u64::from(self.slot)
    }

    /// The value JS sees: exact, since every handle is below 2^53.
    pub fn to_f64(self) -> f64 {
        self.encode() as f64
    }

    /// The first three rows of the contract's decoding table that need no table: backend, kind,
    /// environment.
    pub fn classify(self, backend: Backend, kind: Kind, env: u8) -> Result<(), HandleError> {
        let (tag_backend, tag_kind) = (self.tag >> 2, self.tag & 0b11);
        let other = match backend {
            Backend::Cpp => Backend::Rust,
            Backend::Rust => Backend::Cpp,
        };
        if tag_backend == other as u8 {
            return Err(HandleError::Foreign(other));
        }
        if tag_backend != backend as u8 || tag_kind != kind as u8 {
            return Err(HandleError::Invalid);
        }
        if self.env != env {
            return Err(HandleError::ForeignEnv);
        }
        Ok(())
    }
}

struct Slot<T> {
    /// The generation of the live value, or, for an empty slot, the generation the next value
    /// will get. Starts at 1; `RETIRED_GENERATION` means the slot is never reused.
    generation: u32,
    value: Option<T>,
}

/// The table could not take another value: every slot is live or retired, or growing the table
/// failed. The value is handed back so its owner can release it.
#[derive(Debug)]
pub struct TableFull<T>(pub T);

/// Per-environment, per-kind slots addressed by (slot, generation).
pub struct HandleTable<T> {
    slots: Vec<Slot<T>>,
    /// Empty, non-retired slots, reused last-in first-out (the hottest slot first).
    free: Vec<u32>,
    live: usize,
}

impl<T> Default for HandleTable<T> {
    fn default() -> Self {
        HandleTable { slots: Vec::new(), free: Vec::new(), live: 0 }
    }
}

impl<T> HandleTable<T> {
    /// Number of live values.
    pub fn live(&self) -> usize {
        self.live
    }

    /// The (slot, generation) the next [`insert`](Self::insert) will return, with room for it reserved (so that
    /// insert cannot fail), or `None` if the table is full. For a value that must know its own handle before it is
    /// stored (a subscription the worker thread may deliver to as soon as it is registered).
    pub fn next_key(&mut self) -> Option<(u32, u32)> {
        if let Some(&index) = self.free.last() {
            return Some((index, self.slots[index as usize].generation));
        }
        if self.slots.len() >= MAX_SLOTS || self.slots.try_reserve(1).is_err() {
            return None;
        }
        if self.free.try_reserve(self.slots.len() + 1 - self.free.len()).is_err() {
            return None;
        }
        Some((self.slots.len() as u32, 1))
    }

    /// Stores `value`, returning its (slot, generation). Never aborts on allocation failure.
    pub fn insert(&mut self, value: T) -> Result<(u32, u32), TableFull<T>> {
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            debug_assert!(slot.value.is_none() && slot.generation < RETIRED_GENERATION);
            slot.value = Some(value);
            self.live += 1;
            return Ok((index, slot.generation));
        }
        if self.slots.len() >= MAX_SLOTS || self.slots.try_reserve(1).is_err() {
            return Err(TableFull(value));
        }
        // Reserve room to park this slot on the free list later, so `remove` never allocates.
        if self.free.try_reserve(self.slots.len() + 1 - self.free.len()).is_err() {
            return Err(TableFull(value));
        }
        let index = self.slots.len() as u32;
        self.slots.push(Slot { generation: 1, value: Some(value) });
        self.live += 1;
        Ok((index, 1))
    }

    /// Where (slot, generation) stands: live, released, or never issued.
    fn locate(&self, slot: u32, generation: u32) -> Result<usize, HandleError> {
        let index = slot as usize;
        let current = self.slots.get(index).ok_or(HandleError::Invalid)?;
        if generation == 0 || generation > current.generation {
            return Err(HandleError::Invalid);
        }
        if generation < current.generation {
            return Err(HandleError::Released);
        }
        // Same generation: live, or an empty slot's next generation (not issued yet).
        if current.value.is_some() { Ok(index) } else { Err(HandleError::Invalid) }
    }

    pub fn get_mut(&mut self, slot: u32, generation: u32) -> Result<&mut T, HandleError> {
        let index = self.locate(slot, generation)?;
        Ok(self.slots[index].value.as_mut().expect("located slots are live"))
    }

    /// Takes the value out and bumps the slot's generation; the caller now owns the value.
    pub fn remove(&mut self, slot: u32, generation: u32) -> Result<T, HandleError> {
        let index = self.locate(slot, generation)?;
        let value = self.slots[index].value.take().expect("located slots are live");
        self.release_slot(index);
        Ok(value)
    }

    /// Takes the live value out and hands it to `release`. If `release` gives it back (`Err`), it goes back into
    /// its slot unchanged (same generation: the handle stays valid) and the result is `Ok(None)`; else the slot is
    /// released as by [`remove`](Self::remove). For a release the owner may refuse (seed 000's cancel under the
    /// wrong dest).
    pub fn remove_with<R>(
        &mut self,
        slot: u32,
        generation: u32,
        release: impl FnOnce(T) -> Result<R, T>,
    ) -> Result<Option<R>, HandleError> {
        let index = self.locate(slot, generation)?;
        let value = self.slots[index].value.take().expect("located slots are live");
        match release(value) {
            Ok(released) => {
                self.release_slot(index);
                Ok(Some(released))
            }
            Err(kept) => {
                self.slots[index].value = Some(kept);
                Ok(None)
            }
        }
    }

    /// Releases every live value, in slot order, as [`remove`](Self::remove) would (generations bumped, so every
    /// handle issued so far reads as released). Returns how many. `release` must not use the table.
    pub fn remove_all(&mut self, mut release: impl FnMut(T)) -> usize {
        let mut count = 0;
        for index in 0..self.slots.len() {
            if let Some(value) = self.slots[index].value.take() {
                self.release_slot(index);
                release(value);
                count += 1;
            }
        }
        count
    }

    /// Bumps the generation of a slot whose value was just taken, and parks it for reuse unless it retires.
    fn release_slot(&mut self, index: usize) {
        let entry = &mut self.slots[index];
        debug_assert!(entry.value.is_none());
        entry.generation += 1;
        if entry.generation < RETIRED_GENERATION {
            // Capacity was reserved in `insert`, so this push does not allocate.
            self.free.push(index as u32);
        }
        self.live -= 1;
    }

    /// Takes every live value out (environment teardown). The table is left empty.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.free.clear();
        self.live = 0;
        self.slots.drain(..).filter_map(|slot| slot.value)
    }

    #[cfg(test)]
    fn set_generation_for_test(&mut self, slot: u32, generation: u32) {
        self.slots[slot as usize].generation = generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_layout_round_trips() {
        let h = Handle::new(0xAB, Backend::Rust, Kind::String, RETIRED_GENERATION - 1, MAX_SLOTS as u32 - 1);
        assert_eq!(h.tag, 0b1001);
        let value = h.encode();
        assert!(value < HANDLE_LIMIT);
        assert_eq!(Handle::decode(value), h);
        assert_eq!(value >> 45, 0xAB);
        assert_eq!((value >> 41) & 0xF, 0b1001);
        assert_eq!((value >> 22) & 0x7FFFF, u64::from(RETIRED_GENERATION - 1));
        assert_eq!(value & 0x3FFFFF, MAX_SLOTS as u64 - 1);
        assert_eq!(h.to_f64() as u64, value, "exact as a JS number");
        // The smallest rust string handle: env 1, generation 1, slot 0.
        assert_eq!(
            Handle::new(1, Backend::Rust, Kind::String, 1, 0).encode(),
            (1 << 45) | (9 << 41) | (1 << 22)
        );
    }

    #[test]
    fn classify_follows_the_contract_order() {
        let rust = |tag: u8, env: u8| Handle { env, tag, generation: 1, slot: 0 };
        let check = |h: Handle| h.classify(Backend::Rust, Kind::String, 3);
        assert_eq!(check(rust(0b1001, 3)), Ok(()));
        // cpp backend wins over a wrong kind and a wrong env.
        assert_eq!(check(rust(0b0101, 3)), Err(HandleError::Foreign(Backend::Cpp)));
        assert_eq!(check(rust(0b0110, 9)), Err(HandleError::Foreign(Backend::Cpp)));
        // Wrong kind or unknown backend: invalid, before the env check.
        assert_eq!(check(rust(0b1010, 9)), Err(HandleError::Invalid));
        assert_eq!(check(rust(0b0001, 3)), Err(HandleError::Invalid));
        assert_eq!(check(rust(0b1101, 3)), Err(HandleError::Invalid));
        assert_eq!(check(rust(0, 0)), Err(HandleError::Invalid));
        assert_eq!(check(rust(0b1001, 4)), Err(HandleError::ForeignEnv));
        // The cpp addon sees rust handles as foreign.
        assert_eq!(
            rust(0b1001, 3).classify(Backend::Cpp, Kind::String, 3),
            Err(HandleError::Foreign(Backend::Rust))
        );
    }

    #[test]
    fn generations_detect_release_and_never_issued() {
        let mut table = HandleTable::default();
        let (slot, generation) = table.insert("a").unwrap();
        assert_eq!((slot, generation), (0, 1));
        assert_eq!(table.get_mut(slot, generation), Ok(&mut "a"));
        assert_eq!(table.get_mut(slot, 2), Err(HandleError::Invalid), "newer than the slot");
        assert_eq!(table.get_mut(slot, 0), Err(HandleError::Invalid), "generation 0 is never issued");
        assert_eq!(table.get_mut(1, 1), Err(HandleError::Invalid), "beyond the table");
        assert_eq!(table.remove(slot, generation), Ok("a"));
        assert_eq!(table.remove(slot, generation), Err(HandleError::Released));
        assert_eq!(table.get_mut(slot, 2), Err(HandleError::Invalid), "empty slot's next generation");
        let (again, next) = table.insert("b").unwrap();
        assert_eq!((again, next), (0, 2), "slot reused with a bumped generation");
        assert_eq!(table.get_mut(slot, generation), Err(HandleError::Released));
        assert_eq!(table.live(), 1);
    }

    #[test]
    fn a_slot_retires_at_the_last_generation() {
        let mut table = HandleTable::default();
        let (slot, _) = table.insert(1).unwrap();
        table.set_generation_for_test(slot, RETIRED_GENERATION - 1);
        assert_eq!(table.remove(slot, RETIRED_GENERATION - 1), Ok(1));
        assert_eq!(table.get_mut(slot, RETIRED_GENERATION - 1), Err(HandleError::Released));
        assert_eq!(table.get_mut(slot, RETIRED_GENERATION), Err(HandleError::Invalid));
        let (fresh, generation) = table.insert(2).unwrap();
        assert_eq!((fresh, generation), (1, 1), "the retired slot is not reused");
    }

    #[test]
    fn remove_with_keeps_a_refused_value_in_place() {
        let mut table = HandleTable::default();
        let (slot, generation) = table.insert("registered").unwrap();
        assert_eq!(table.remove_with(slot, generation, Err::<(), _>), Ok(None));
        assert_eq!(table.get_mut(slot, generation), Ok(&mut "registered"), "same slot, same generation");
        assert_eq!(table.live(), 1);
        assert_eq!(table.remove_with(slot, generation, |v| Ok::<_, &str>(v.len())), Ok(Some(10)));
        assert_eq!(table.get_mut(slot, generation), Err(HandleError::Released));
        assert_eq!(table.remove_with(slot, generation, Ok::<_, &str>), Err(HandleError::Released));
        assert_eq!(table.live(), 0);
    }

    #[test]
    fn remove_all_releases_every_handle() {
        let mut table = HandleTable::default();
        let handles: Vec<_> = (0..4).map(|i| table.insert(i).unwrap()).collect();
        table.remove(handles[2].0, handles[2].1).unwrap();
        let mut released = Vec::new();
        assert_eq!(table.remove_all(|v| released.push(v)), 3);
        assert_eq!(released, [0, 1, 3]);
        assert_eq!(table.live(), 0);
        for (slot, generation) in handles {
            assert_eq!(
                table.get_mut(slot, generation),
                Err(HandleError::Released),
                "stale, not never-issued"
            );
        }
        let (slot, generation) = table.insert(9).unwrap();
        assert!(generation >= 2, "a reused slot never repeats a generation ({slot}, {generation})");
    }

    #[test]
    fn next_key_is_what_insert_returns() {
        let mut table = HandleTable::default();
        let key = table.next_key().unwrap();
        assert_eq!(key, (0, 1));
        assert_eq!(table.next_key(), Some(key), "asking again changes nothing");
        assert_eq!(table.insert("a").unwrap(), key);
        let next = table.next_key().unwrap();
        assert_eq!(table.insert("b").unwrap(), next);
        table.remove(key.0, key.1).unwrap();
        let reused = table.next_key().unwrap();
        assert_eq!(reused, (0, 2), "the freed slot, one generation on");
        assert_eq!(table.insert("c").unwrap(), reused);
    }

    #[test]
    fn producer_handles_have_kind_3() {
        let h = Handle::new(1, Backend::Rust, Kind::Producer, 1, 0);
        assert_eq!(h.tag, 0b1011);
        assert_eq!(h.classify(Backend::Rust, Kind::Producer, 1), Ok(()));
        assert_eq!(h.classify(Backend::Rust, Kind::Subscription, 1), Err(HandleError::Invalid));
        assert_eq!(h.classify(Backend::Cpp, Kind::Producer, 1), Err(HandleError::Foreign(Backend::Rust)));
    }

    #[test]
    fn drain_takes_every_live_value() {
        let mut table = HandleTable::default();
        let handles: Vec<_> = (0..5).map(|i| table.insert(i).unwrap()).collect();
        table.remove(handles[1].0, handles[1].1).unwrap();
        let mut drained: Vec<_> = table.drain().collect();
        drained.sort();
        assert_eq!(drained, [0, 2, 3, 4]);
        assert_eq!(table.live(), 0);
    }
}
