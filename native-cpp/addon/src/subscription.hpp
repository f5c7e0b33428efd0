// Seed 000's boxed callback, node-addon-api side: what one subscription slot owns, and the per-send context the
// trampoline reads. See docs/raw-contract.md ("Subscriptions") and napi_ownership/dispatcher.h.
//
//   slot (HandleTable<SubscriptionEntry>) ── owns ──► CallbackBox { FunctionReference (strong) }   seed 000's box
//                                         ── owns ──► FFIWrapper { trampoline, self = the box }   borrowed by the
//                                         ── owns ──► DispatcherRegistration { ctx, dest }          dispatcher
//
// Cancel = dispatcher_cancel, then delete the FFIWrapper and the box (which deletes the reference, so the function
// becomes collectable). SubscriptionEntry encodes that order in its member order.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "napi_ownership/dispatcher.h"

namespace napi_ownership {

struct AddonState;

// Seed 000's RustSideHandler + Box<dyn OnSend>: the JS function, held by a strong reference (refcount 1) while the
// box lives, so the callback stays alive while it is registered even if JS dropped it (seed 004's "mark").
struct CallbackBox {
  Napi::FunctionReference function;  // deleted with the box: then the function is collectable again
  napi_env env;
  AddonState* state;  // the environment's state; outlives every box (teardown frees the boxes first)
  // The subscription's handle, published by handler() once the slot holds the box (0 until then). The dispatcher's
  // worker reads it in the trampoline and queues the NUMBER, never this box: the box may be freed (cancel) before the
  // JS thread gets to the item, and the handle's generation then says "released".
  std::atomic<std::uint64_t> handle{0};
};

// One registration with the dispatcher. Destroying it cancels it (dispatcher_cancel), unless it was already cancelled
// through cancel_under() or moved from. Holds its own copy of dest: dispatcher_cancel needs it when JS gives none.
class DispatcherRegistration {
 public:
  DispatcherRegistration(Dispatcher* dispatcher, std::string dest, DispatcherCtx ctx) noexcept
      : dispatcher_(dispatcher), dest_(std::move(dest)), ctx_(ctx) {}
  DispatcherRegistration(DispatcherRegistration&& other) noexcept
      : dispatcher_(other.dispatcher_), dest_(std::move(other.dest_)), ctx_(std::exchange(other.ctx_, 0)) {}
  DispatcherRegistration& operator=(DispatcherRegistration&&) = delete;
  DispatcherRegistration(const DispatcherRegistration&) = delete;
  DispatcherRegistration& operator=(const DispatcherRegistration&) = delete;
  ~DispatcherRegistration() { cancel(); }

  // Seed 000's cancel(dest, ctx): cancels only if registered under `dest`. True if it was (then the dispatcher is done
  // with the FFIWrapper: no other thread is inside the callback); false leaves it registered.
  bool cancel_under(const char* dest) noexcept {
    if (ctx_ == 0 || dispatcher_cancel(dispatcher_, dest, ctx_) != 0) return false;
    ctx_ = 0;
    return true;
  }

  // Cancels under its own dest. Afterwards the dispatcher no longer borrows the FFIWrapper.
  void cancel() noexcept {
    if (ctx_ != 0) (void)dispatcher_cancel(dispatcher_, dest_.c_str(), ctx_);
    ctx_ = 0;
  }

 private:
  Dispatcher* dispatcher_;
  std::string dest_;
  DispatcherCtx ctx_;  // 0: not (or no longer) registered
};

// What a subscription slot owns. Members are destroyed in reverse order: the registration first (dispatcher_cancel),
// then the FFIWrapper and the box the dispatcher borrowed until then.
struct SubscriptionEntry {
  std::unique_ptr<CallbackBox> box;
  std::unique_ptr<FFIWrapper> wrapper;  // { trampoline, box.get() }
  DispatcherRegistration registration;  // declared last: destroyed first
};

// What one registration holds natively, as reported to V8 (napi_adjust_external_memory, batched with the strings'
// bytes): the box and its Node reference, the FFIWrapper, the table slot, the dispatcher's record and index entry.
// Measured: RSS grows by ~395 B per registration over 400,000 raw handler() calls sharing one function (Node 20).
inline constexpr std::int64_t kRegistrationBytes = 400;

struct HandlerLedger {
  std::uint64_t registered = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t finalized = 0;
  std::uint64_t live() const noexcept { return registered - cancelled - finalized; }
};

// One send() in progress on the JS thread. Sends nest (a callback may send), so frames form a stack through `outer`,
// and AddonState::send_frame names the innermost: the trampoline reads the message from it and adds what callbacks
// throw to it.
struct SendFrame {
  napi_value message;               // the JS string send() received, passed to every callback as is
  napi_value receiver;              // undefined: `this` of every callback
  std::vector<napi_value> errors;   // thrown values, in delivery order (allocates only once something throws)
  std::size_t unrecorded = 0;       // throws that could not be recorded (std::bad_alloc); still counted
  SendFrame* outer;                 // the send this one runs inside, or nullptr
};

}  // namespace napi_ownership
