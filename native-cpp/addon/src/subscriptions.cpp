// The subscription exports of docs/raw-contract.md ("Subscriptions"): seed 000's boxed callbacks over this
// environment's dispatcher (napi_ownership/dispatcher.h). Ownership is laid out in subscription.hpp.
//
// send() is a hot path: dest and message are converted into stack buffers when short, the message JS value is the
// argument itself (one value for every callback), and the trampoline allocates nothing unless a callback throws.
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "args.hpp"
#include "binding.hpp"
#include "errors.hpp"
#include "fast.hpp"
#include "handle.hpp"
#include "napi_ownership/dispatcher.h"
#include "posts.hpp"
#include "state.hpp"
#include "subscription.hpp"
#include "subscriptions.hpp"

namespace napi_ownership {
namespace {

using handle::Kind;
using SubscriptionKey = HandleTable<SubscriptionEntry>::Key;

// The DispatcherCallback of every subscription: calls the boxed JS function with (message), `this` undefined.
// It must not throw into the core (noexcept, and nothing here throws), and it must not touch its box once the JS call
// has returned: the callback may have cancelled its own subscription, which freed the box and the FFIWrapper.
//
// Off the JS thread (the dispatcher's worker delivering a post) no JS may run: the trampoline notes the subscription's
// HANDLE in the worker's batch, which on_delivered queues on the threadsafe function (posts.cpp). It never waits for
// the JS thread, so a cancel there (which waits for this call to return) cannot deadlock.
void trampoline(void* self, const char* /*dest*/, const char* msg) noexcept {
  const CallbackBox* box = static_cast<const CallbackBox*>(self);  // borrowed from the slot, for this call only
  AddonState* const state = box->state;
  if (std::this_thread::get_id() != state->js_thread) {
    const std::uint64_t handle = box->handle.load(std::memory_order_acquire);
    // 0: handler() has not returned yet (the slot is being filled); the message counts as sent before it registered.
    if (handle != 0) note_worker_delivery(*state, handle, msg);
    return;
  }
  SendFrame* const frame = state->send_frame;
  const Napi::Env env = box->env;
  try {
    const Napi::Function function = box->function.Value();
    if (function.IsEmpty()) return;
    // `box` is not used below this line.
    const napi_value message = frame != nullptr ? frame->message : static_cast<napi_value>(Napi::String::New(env, msg));
    const napi_value receiver = frame != nullptr ? frame->receiver : static_cast<napi_value>(env.Undefined());
    napi_value error = nullptr;
    // The callback threw: carried back as the value thrown. (CallOutcome::kCannotRun: JS can no longer run, so no
    // exception is pending, and there is nothing to carry back.)
    if (fast::call_collecting(env, function, receiver, message, &error) != fast::CallOutcome::kThrew) return;
    if (frame == nullptr) return;  // not inside our send(): nobody to hand it to (cannot happen on the JS thread)
    try {
      frame->errors.push_back(error);  // thrown later by send(), after every callback ran
    } catch (...) {
      ++frame->unrecorded;  // std::bad_alloc: still counted in the AggregateError's message
    }
  } catch (...) {  // a Napi::Error making the message: never thrown into the core
  }
}

// Throws what the callbacks of one send threw: the value itself if exactly one threw, else an AggregateError with code
// ERR_CALLBACKS_THREW whose `errors` are the thrown values in delivery order. Building it may run JS (a getter for
// globalThis.AggregateError that sends, registers or shuts down): by then the frame is off the send stack, so no
// trampoline writes to it, and callbacks_threw has read it before that JS runs.
void throw_collected(Napi::Env env, const SendFrame& frame, const Utf8Arg& dest) {
  const std::size_t count = frame.errors.size() + frame.unrecorded;
  const Napi::Value error =
      errors::callbacks_threw(env, frame.errors.data(), frame.errors.size(), count, dest.c_str(), dest.length());
  fast::throw_value(env, error);  // the value itself, not wrapped in a Napi::Error (see fast.hpp)
}

// Pushes a frame on the environment's send stack for the duration of one dispatcher_send.
class SendScope {
 public:
  SendScope(AddonState& state, SendFrame& frame) noexcept : state_(state), frame_(frame) {
    frame_.outer = state_.send_frame;
    state_.send_frame = &frame_;
  }
  ~SendScope() { state_.send_frame = frame_.outer; }
  SendScope(const SendScope&) = delete;
  SendScope& operator=(const SendScope&) = delete;

 private:
  AddonState& state_;
  SendFrame& frame_;
};

}  // namespace

// handler(dest, callback): subscription handle
Napi::Value handler(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
  Utf8Arg dest;
  read_dest(env, info[0], dest);
  if (!info[1].IsFunction()) errors::throw_invalid_arg_type(env, "a function", "callback", info[1]);

  std::optional<SubscriptionKey> key;
  try {
    // Seed 000's boxes. Owned here until the table takes them; any throw below frees them (and cancels the
    // registration, if it was made) on the way out.
    std::unique_ptr<CallbackBox> box(
        new CallbackBox{Napi::Persistent(info[1].As<Napi::Function>()), env, &state});  // strong reference: the "mark"
    CallbackBox* const published = box.get();
    auto wrapper = std::make_unique<FFIWrapper>(FFIWrapper{trampoline, box.get()});
    std::string dest_copy(dest.c_str(), dest.length());
    // The dispatcher borrows `wrapper` (and through it `box`) from here until dispatcher_cancel returns.
    const DispatcherCtx ctx = dispatcher_handler(state.dispatcher.get(), dest.c_str(), wrapper.get());
    if (ctx == 0) throw std::bad_alloc();  // dispatcher_handler's only failure with valid arguments
    SubscriptionEntry entry{std::move(box), std::move(wrapper),
                            DispatcherRegistration(state.dispatcher.get(), std::move(dest_copy), ctx)};
    key = state.subscriptions.insert(std::move(entry));  // the slot owns all three from here
    if (!key) {
      // Refused (table full): `entry` still owns them. Cancelled and freed here, before the error is made: nothing of
      // a registration that failed may still be delivered to while anything else runs.
      { const SubscriptionEntry refused = std::move(entry); }
      errors::throw_table_full(env, Kind::kSubscription);
    }
    // The worker may already be inside the trampoline; from here on it queues this handle for the JS thread.
    published->handle.store(handle::encode(state.env_id, handle::kThisBackend, Kind::kSubscription, key->generation,
                                           key->slot),
                            std::memory_order_release);
  } catch (const std::bad_alloc&) {
    errors::throw_subscription_alloc(env);
  }
  state.handlers.registered += 1;
  state.shared->memory.adjust(env, kRegistrationBytes);  // V8 hears of it, so dropped ones prompt collections too
  return handle_value(env, state, Kind::kSubscription, key->generation, key->slot);
}

namespace {

// cancel(handle, dest?) / finalize_subscription(handle): true, or false if already cancelled (or, with a dest, not
// registered under it: then it stays registered).
Napi::Value release_subscription(const Napi::CallbackInfo& info, AddonState& state, bool finalized) {
  const Napi::Env env = info.Env();
  const std::optional<SubscriptionKey> key = resolve(env, state, state.subscriptions, info[0], Kind::kSubscription);
  Utf8Arg dest;
  const bool with_dest = !finalized && !info[1].IsUndefined();
  if (with_dest) read_dest(env, info[1], dest);  // checked even for a released handle: a bad dest is a bad call
  if (!key) return Napi::Boolean::New(env, false);

  SubscriptionEntry& entry = *state.subscriptions.find(*key);
  // Seed 000's cancel(dest, ctx): the dispatcher decides whether it is registered under that dest.
  if (with_dest && !entry.registration.cancel_under(dest.c_str())) return Napi::Boolean::New(env, false);
  std::optional<SubscriptionEntry> taken = state.subscriptions.take(*key);  // ours now; the handle is released
  (finalized ? state.handlers.finalized : state.handlers.cancelled) += 1;
  state.shared->memory.adjust(env, -kRegistrationBytes);
  // dispatcher_cancel (unless cancel_under already did), then the FFIWrapper and the box, whose FunctionReference is
  // deleted: the function is collectable again. If the callback being cancelled is running further up this stack,
  // its trampoline does not touch the box after the JS call returns.
  taken.reset();
  return Napi::Boolean::New(env, true);
}

}  // namespace

Napi::Value cancel(const Napi::CallbackInfo& info, AddonState& state) {
  return release_subscription(info, state, false);
}
Napi::Value finalize_subscription(const Napi::CallbackInfo& info, AddonState& state) {
  return release_subscription(info, state, true);
}

// subscription_active(handle): whether still registered (false for a released handle, no error).
Napi::Value subscription_active(const Napi::CallbackInfo& info, AddonState& state) {
  const bool live = resolve(info.Env(), state, state.subscriptions, info[0], Kind::kSubscription).has_value();
  return Napi::Boolean::New(info.Env(), live);
}

// send(dest, message): how many callbacks ran; afterwards throws what they threw.
Napi::Value send(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
  Utf8Arg dest;
  read_dest(env, info[0], dest);
  Utf8Arg message;
  read_message(env, info[1], message);

  SendFrame frame{info[1], env.Undefined(), {}, 0, nullptr};
  std::int32_t delivered;
  {
    SendScope scope(state, frame);  // the trampolines of this send (and of none nested in it) report to `frame`
    delivered = dispatcher_send(state.dispatcher.get(), dest.c_str(), message.c_str());
  }
  if (!frame.errors.empty() || frame.unrecorded != 0) {
    throw_collected(env, frame, dest);
    return Napi::Value();  // the pending exception is the result
  }
  return Napi::Number::New(env, delivered);
}

// shutdown(): cancels every registration of this environment (counted as cancelled), then dispatcher_shutdown, which
// also joins the worker and discards the posts it had not delivered: their promises resolve with 0 (no callback ran).
// Producers keep running (their next post restarts the worker).
Napi::Value shutdown(const Napi::CallbackInfo& info, AddonState& state) {
  // Each entry is destroyed as take_each hands it over: dispatcher_cancel, then its boxes and reference.
  const std::size_t cancelled = state.subscriptions.take_each([](SubscriptionEntry&&) {});
  state.handlers.cancelled += cancelled;
  state.shared->memory.adjust(info.Env(), -kRegistrationBytes * static_cast<std::int64_t>(cancelled));
  (void)dispatcher_shutdown(state.dispatcher.get());  // holds nothing of ours by now; frees its own records
  return Napi::Number::New(info.Env(), static_cast<double>(cancelled));
}

Napi::Object handler_stats(Napi::Env env, const AddonState& state) {
  const HandlerLedger& ledger = state.handlers;
  return define_object(env, {{"live", number_value(env, static_cast<double>(ledger.live()))},
                             {"registered", number_value(env, static_cast<double>(ledger.registered))},
                             {"cancelled", number_value(env, static_cast<double>(ledger.cancelled))},
                             {"finalized", number_value(env, static_cast<double>(ledger.finalized))}});
}

}  // namespace napi_ownership
