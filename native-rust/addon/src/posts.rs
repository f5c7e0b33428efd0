//! The JS-thread side of native-thread delivery, in the environment's state: who waits for which items (pending
//! posts' promises, producers' `done`), the event-loop hold, and producer slots.

use napi::sys;
use napi_ownership_dispatch::Producer;

use crate::error_codes::*;
use crate::js::{CallResult, Throw, create_double, create_object};
use crate::ledger::{PostLedger, ProducerLedger};
use crate::promises::{PendingPromise, PromiseKit, Thrown};
use crate::raw::tsfn::Marshal;

/// A post's promise cannot hold more errors than it has callbacks; a producer's keeps this many (and counts all).
pub(crate) const PRODUCER_ERRORS_KEPT: usize = 100;

/// Who is waiting for Done/Finished items with a given id.
pub(crate) enum Waiter {
    Post { promise: PendingPromise, dest: Box<str> },
    Producer(ProducerWaiter),
}

pub(crate) struct ProducerWaiter {
    pub(crate) promise: PendingPromise,
    pub(crate) dest: Box<str>,
    /// Known once its Finished item arrived.
    pub(crate) posted: Option<u32>,
    /// Done items processed for its messages.
    pub(crate) told: u64,
    pub(crate) thrown: Thrown,
}

impl ProducerWaiter {
    pub(crate) fn complete(&self) -> bool {
        self.posted.is_some_and(|posted| u64::from(posted) == self.told)
    }
}

/// Waiters by id: a slab, whose id is the slot. A slot is reused only after its waiter was removed, which happens
/// when its last item arrived (a post's Message; a producer's Finished and every Message), so no later item can
/// name it. Not a HashMap: hashbrown keeps an interior pointer to its table, which valgrind reports as "possibly
/// lost" when the process exits without environment teardown (`process.exit()` on the main thread) with posts
/// pending.
pub(crate) struct Slab<T> {
    pub(crate) slots: Vec<Option<T>>,
    pub(crate) free: Vec<u64>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Stores `value`; its id. Never aborts on allocation failure.
    pub(crate) fn insert(&mut self, value: T) -> Result<u64, Throw> {
        if let Some(id) = self.free.pop() {
            self.slots[id as usize] = Some(value);
            return Ok(id);
        }
        // Room to park the slot on the free list later, so `remove` never allocates.
        let reserve = self.slots.len() + 1 - self.free.len();
        if self.slots.try_reserve(1).is_err() || self.free.try_reserve(reserve).is_err() {
            return Err(Throw::range_error(
                ERR_NATIVE_ALLOC,
                "could not allocate the record of a pending post".to_owned(),
            ));
        }
        self.slots.push(Some(value));
        Ok((self.slots.len() - 1) as u64)
    }

    pub(crate) fn get(&self, id: u64) -> Option<&T> {
        self.slots.get(id as usize)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        self.slots.get_mut(id as usize)?.as_mut()
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<T> {
        let value = self.slots.get_mut(id as usize)?.take()?;
        self.free.push(id);
        Some(value)
    }
}

/// The JS-thread side of native-thread delivery, in the environment's state.
pub struct Posts {
    pub ledger: PostLedger,
    /// Made on the first post or produce.
    pub(crate) kit: Option<PromiseKit>,
    pub(crate) waiters: Slab<Waiter>,
    /// Pending posts plus producers not complete: the threadsafe function is ref'd while non-zero.
    pub(crate) keepalive: u64,
}

impl Posts {
    pub fn new() -> Self {
        Posts { ledger: PostLedger::default(), kit: None, waiters: Slab::default(), keepalive: 0 }
    }

    /// One more reason to keep the event loop alive.
    pub(crate) fn hold(&mut self, env: sys::napi_env, marshal: &Marshal) {
        if self.keepalive == 0 {
            marshal.hold_loop(env);
        }
        self.keepalive += 1;
    }

    /// One reason fewer; the loop may exit once there are none.
    pub(crate) fn unhold(&mut self, env: sys::napi_env, marshal: &Marshal) {
        self.keepalive -= 1;
        if self.keepalive == 0 {
            marshal.release_loop(env);
        }
    }
}

/// A producer slot (kind 3): owns the producer (its thread and native record). Its `done` is a waiter in `Posts`.
pub struct ProducerSlot {
    pub(crate) producer: Producer,
}

/// `stats().posts`.
pub fn post_stats(env: sys::napi_env, ledger: PostLedger, pending: u64) -> CallResult {
    let count = |n: u64| create_double(env, n as f64);
    create_object(
        env,
        &[
            (c"posted", count(ledger.posted)?),
            (c"delivered", count(ledger.delivered)?),
            (c"skipped", count(ledger.skipped)?),
            (c"pending", count(pending)?),
        ],
    )
}

/// `stats().producers`.
pub fn producer_stats(env: sys::napi_env, ledger: ProducerLedger, live: u64) -> CallResult {
    let count = |n: u64| create_double(env, n as f64);
    create_object(
        env,
        &[
            (c"live", count(live)?),
            (c"started", count(ledger.started)?),
            (c"stopped", count(ledger.stopped)?),
            (c"finalized", count(ledger.finalized)?),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_reuses_an_id_only_after_its_removal() {
        let mut slab = Slab::default();
        let a = slab.insert("a").unwrap();
        let b = slab.insert("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None, "removed once");
        assert_eq!(slab.get_mut(a), None);
        let c = slab.insert("c").unwrap();
        assert_eq!(c, a, "the freed slot");
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.get(99), None);
    }
}
