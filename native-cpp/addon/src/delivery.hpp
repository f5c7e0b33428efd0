// Native-thread delivery, node-addon-api side: what crosses from the dispatcher's worker (and the producers' threads)
// to the JS thread, and who owns it on the way. See docs/raw-contract.md ("Native-thread delivery") and posts.cpp.
//
//   post():    MessageItem (new) ──ctx──► dispatcher queue ──worker: the trampolines fill the WorkerBatch──►
//              on_delivered: the batch moves into the item ──NonBlockingCall──► threadsafe function queue ──►
//              call_js on the JS thread: each subscription HANDLE looked up (live: called; released: skipped), the
//              post's promise settled, the item deleted. A post discarded by a shutdown takes the same road with -1.
//   produce(): ProducerRun (new) is the ctx of every post of its producer; each delivered post becomes a MessageItem
//              (new, on the worker). When every post was told and on_finished ran (`balance` back to 0), the run itself
//              is queued, as the producer's "finished" item: so it reaches JS after all of its messages.
//   Teardown:  items still queued are handed to call_js with env == nullptr and deleted there.
//
// No item ever points at a CallbackBox: a box can be freed by cancel() while its deliveries wait in the queue.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "napi_ownership/dispatcher.h"

namespace napi_ownership {

struct AddonState;

// What the threadsafe function carries. Deleted by call_js (env or not), or by whoever failed to queue it.
struct Item {
  enum class Type : std::uint8_t { kMessage, kProducerFinished };
  explicit Item(Type t) noexcept : type(t) {}
  const Type type;
};

// One posted message after the worker delivered it (or a shutdown discarded it: `delivered` == -1).
struct MessageItem : Item {
  MessageItem(AddonState* s, std::uint64_t t) noexcept : Item(Type::kMessage), state(s), token(t) {}

  // The subscriptions whose trampoline ran for it, in delivery order: up to kInline in the item itself (no allocation
  // for the common few), all of them in `more` otherwise.
  static constexpr std::size_t kInline = 4;
  std::size_t handle_count() const noexcept { return more.empty() ? inline_count : more.size(); }
  std::uint64_t handle_at(std::size_t i) const noexcept { return more.empty() ? inline_handles[i] : more[i]; }

  AddonState* const state;
  std::uint64_t token;                 // in AddonState::promises: the post's promise, or its producer's `done`
  bool from_producer = false;          // a producer's message: what its callbacks threw goes to `done`'s record
  std::int32_t delivered = 0;          // the dispatcher's count (trampoline calls); -1: discarded
  std::string message;                 // owned copy (empty if no trampoline ran)
  std::uint64_t inline_handles[kInline] = {};
  std::size_t inline_count = 0;
  std::vector<std::uint64_t> more;
};

// One produce(). The ctx of its producer's posts, and (once `balance` is back to 0) its own "finished" item.
struct ProducerRun : Item {
  ProducerRun(AddonState* s, std::uint64_t t) noexcept : Item(Type::kProducerFinished), state(s), token(t) {}

  AddonState* const state;
  std::uint64_t token;  // the `done` promise in AddonState::promises
  // Posts told (on_delivered, any value) count -1 each; on_finished adds `posted`. Whoever brings it to 0 queues the
  // run: after that no thread touches it until call_js.
  std::atomic<std::int64_t> balance{0};
  std::uint32_t posted = 0;  // set by on_finished before its balance update; read by call_js
};

void free_item(Item* item) noexcept;

// The CallJs of the threadsafe function (posts.cpp). env == nullptr: teardown; only deletes the item.
void call_js(Napi::Env env, Napi::Function unused, AddonState* state, Item* item);

// One per environment: created by the Addon, released (abort) by its teardown hook, deleted by Node once released.
using DeliveryTsfn = Napi::TypedThreadSafeFunction<AddonState, Item, call_js>;

// What the worker's trampolines collected for the message being delivered. Only the worker thread touches it (the
// only thread that runs callbacks off the JS thread); on_delivered moves it into the message's item.
struct WorkerBatch {
  std::string message;
  std::vector<std::uint64_t> handles;
};

// A promise the addon will settle: its resolve and reject functions, by strong references (Napi::FunctionReference).
// Not a Napi::Promise::Deferred: napi_create_promise allocates a persistent that only concluding frees, so a deferred
// never concluded (an environment torn down with a post pending) leaks it, and concluding needs JS. A reference is
// simply deleted. Every reference here is deleted by its destructor: when settle drops the promise, or with the map in
// ~Addon (the instance-data finalizer, env still valid, no JS runs).
struct PendingPromise {
  Napi::FunctionReference resolve;
  Napi::FunctionReference reject;
  std::string dest;  // for the AggregateError of a post whose callbacks threw
  // A producer's `done` only: what the callbacks of its messages threw, reported in one process warning when `done`
  // resolves. The first kProducerErrorsKept values by strong references (deleted with the promise, so on every path
  // that drops it, teardown included); all of them counted.
  std::vector<Napi::Reference<Napi::Value>> thrown;
  std::size_t thrown_count = 0;
};

// How many of the values thrown during a producer's deliveries its `done` keeps (the warning counts all of them).
inline constexpr std::size_t kProducerErrorsKept = 100;

// A producer slot (kind 3). Members are destroyed in reverse order: the producer first (producer_free: stop + join,
// after which on_finished has run), then the control block its thread was using.
struct ProducerControl {
  std::atomic<bool> posting{true};  // cleared by on_finished (the producer's thread): producer_active
  ProducerRun* run = nullptr;       // borrowed: owned by the posts and on_finished until the run is queued
};

struct ProducerFree {
  void operator()(DispatcherProducer* p) const noexcept { producer_free(p); }
};

struct ProducerEntry {
  std::unique_ptr<ProducerControl> control;  // on_finished's ctx
  std::unique_ptr<DispatcherProducer, ProducerFree> producer;  // declared last: destroyed (stopped, joined) first
};

struct PostLedger {
  std::uint64_t posted = 0;     // successful post()s, plus every producer's posts once it finished
  std::uint64_t delivered = 0;  // callbacks run on the JS thread for posted messages
  std::uint64_t skipped = 0;    // deliveries dropped: the subscription was released before the JS thread got there
};

struct ProducerLedger {
  std::uint64_t started = 0;
  std::uint64_t stopped = 0;
  std::uint64_t finalized = 0;
};

}  // namespace napi_ownership
