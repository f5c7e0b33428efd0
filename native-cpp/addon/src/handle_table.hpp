// A generation-checked slot table: what a handle names. Node-free (the core tests check it without Node).
//
// The table owns its payloads. Taking a payload out empties its slot and bumps the slot's generation, so every handle
// issued for the old occupant becomes "released" and can never alias a later occupant. A slot whose generation
// reaches kRetiredGeneration is retired and never reused. One table per kind per environment (strings now,
// subscriptions later), hence the template.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "handle.hpp"

namespace napi_ownership {

template <typename Payload>
class HandleTable {
  static_assert(std::is_nothrow_move_constructible_v<Payload>, "payloads move in and out without throwing");

 public:
  struct Key {
    std::uint32_t slot;
    std::uint32_t generation;
  };

  enum class State {
    kLive,         // the handle names the current occupant
    kReleased,     // the handle named an earlier occupant, since released
    kNeverIssued,  // slot out of range, generation 0, or a generation this slot has not handed out
  };

  explicit HandleTable(std::uint32_t max_slots = handle::kSlotCount) : max_slots_(max_slots) {}

  // Moves `payload` into a free slot and returns its key, or std::nullopt when every slot is live or retired.
  // Growing the table may throw std::bad_alloc; `payload` is then left untouched (still owned by the caller).
  std::optional<Key> insert(Payload&& payload) {
    std::uint32_t index;
    if (free_head_ != kNone) {
      index = free_head_;
      free_head_ = slots_[index].next_free;
    } else if (slots_.size() < max_slots_) {
      slots_.emplace_back();  // may throw: nothing has been moved yet
      index = static_cast<std::uint32_t>(slots_.size() - 1);
    } else {
      return std::nullopt;
    }
    Slot& slot = slots_[index];
    slot.value.emplace(std::move(payload));  // the table owns it from here until take()
    ++live_;
    return Key{index, slot.generation};
  }

  State classify(Key key) const noexcept {
    if (key.slot >= slots_.size() || key.generation == 0) return State::kNeverIssued;
    const Slot& slot = slots_[key.slot];
    if (key.generation > slot.generation) return State::kNeverIssued;
    if (key.generation == slot.generation) return slot.value ? State::kLive : State::kNeverIssued;
    return State::kReleased;
  }

  // The live payload named by `key`, or nullptr.
  Payload* find(Key key) noexcept {
    return classify(key) == State::kLive ? &*slots_[key.slot].value : nullptr;
  }

  // Moves the live payload named by `key` out to the caller (who now owns it) and releases the slot.
  std::optional<Payload> take(Key key) noexcept {
    if (classify(key) != State::kLive) return std::nullopt;
    Slot& slot = slots_[key.slot];
    std::optional<Payload> out(std::move(slot.value));
    slot.value.reset();
    --live_;
    if (++slot.generation < handle::kRetiredGeneration) {
      slot.next_free = free_head_;
      free_head_ = key.slot;
    } else {
      ++retired_;  // generation exhausted: the slot stays empty forever
    }
    return out;
  }

  // Moves every live payload out to `f` (which then owns it), releasing each slot as take() does. `f` must not insert
  // into or take from this table. Returns how many payloads it handed out.
  template <typename F>
  std::size_t take_each(F&& f) {
    std::size_t count = 0;
    for (std::uint32_t index = 0; index < slots_.size(); ++index) {
      if (std::optional<Payload> out = take(Key{index, slots_[index].generation})) {
        ++count;
        f(std::move(*out));
      }
    }
    return count;
  }

  template <typename F>
  void for_each_live(F&& f) {
    for (Slot& slot : slots_) {
      if (slot.value) f(*slot.value);
    }
  }

  std::size_t live() const noexcept { return live_; }
  std::size_t retired() const noexcept { return retired_; }
  std::size_t size() const noexcept { return slots_.size(); }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  struct Slot {
    std::optional<Payload> value;  // empty: free (or retired)
    std::uint32_t generation = 1;  // the generation of the current or next occupant
    std::uint32_t next_free = kNone;
  };

  std::vector<Slot> slots_;
  std::uint32_t free_head_ = kNone;  // intrusive LIFO free list through Slot::next_free: release never allocates
  std::uint32_t max_slots_;
  std::size_t live_ = 0;
  std::size_t retired_ = 0;
};

}  // namespace napi_ownership
