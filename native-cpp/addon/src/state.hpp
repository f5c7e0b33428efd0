// Per-environment addon state, kept in Node-API instance data (never in a global: workers load the addon too).
#pragma once

#include <node_api.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_map>

#include "delivery.hpp"
#include "handle_table.hpp"
#include "napi_ownership/cpp_core.h"
#include "napi_ownership/dispatcher.h"
#include "subscription.hpp"

namespace napi_ownership {

struct CoreStringDeleter {
  void operator()(char* s) const noexcept { cpp_free_string(s); }
};
// A string allocated by the C++ core: freed by cpp_free_string when this pointer lets go of it.
using CoreString = std::unique_ptr<char, CoreStringDeleter>;

struct AddonState;

// A string's bytes once a view has lent them to JS (seed 004's MemoryGuard: whoever can reach the bytes keeps them
// alive). Co-owned by the string's table slot, while its handle is live, and by every external ArrayBuffer over them
// whose finalizer has not run yet. Freed by cpp_free_string (via `bytes`) when the last of those lets go: free_string
// ends the handle at once, but a view taken before keeps reading the same bytes. JS thread only.
struct SharedBytes {
  SharedBytes(CoreString b, std::size_t n, AddonState* s) noexcept : bytes(std::move(b)), length(n), state(s) {}
  CoreString bytes;  // freed by cpp_free_string when this record is deleted
  std::size_t length;
  std::uint32_t buffers = 0;  // external ArrayBuffers over the bytes, not yet finalized
  bool slot_owned = true;     // the table slot still holds its share (the handle is live)
  AddonState* state;          // whose ledger counts these bytes; null once that state was deleted at teardown
  SharedBytes* prev = nullptr;  // the state's list of every SharedBytes it counts (for teardown)
  SharedBytes* next = nullptr;
};

// Weak references (refcount 0) to the newest view of a live string, so string_view can hand the same Uint8Array out
// again while it is alive. They never keep the JS objects alive and own nothing: the buffer's share is its own.
struct StringView {
  napi_ref array = nullptr;   // the Uint8Array returned by string_view (reused while it is alive)
  napi_ref buffer = nullptr;  // its external ArrayBuffer (kept separately: JS may hold view.buffer alone)
};

struct StringEntry {
  CoreString bytes;  // owned by this entry until the first view moves it into `shared`
  std::size_t length = 0;  // bytes without the NUL
  SharedBytes* shared = nullptr;  // once a view was lent: this slot holds one share of it (SharedBytes::slot_owned)
  StringView view;
  const char* data() const noexcept { return shared != nullptr ? shared->bytes.get() : bytes.get(); }
};

struct StringLedger {
  std::uint64_t allocated = 0;
  std::uint64_t freed = 0;
  std::uint64_t finalized = 0;
  std::uint64_t live_bytes = 0;
  std::uint64_t view_held = 0;        // released strings whose bytes views still hold
  std::uint64_t view_held_bytes = 0;  // ...and their bytes
  std::uint64_t view_copies = 0;      // string_view calls that returned a copy (no external buffers allowed)
  std::uint64_t live() const noexcept { return allocated - freed - finalized; }
};

// Reports live native bytes to V8 with napi_adjust_external_memory, batched (contract "Ledger and memory pressure"):
// once the unreported difference reaches 64 KiB, or at once for a single string of 64 KiB or more.
class ExternalMemory {
 public:
  static constexpr std::int64_t kBatch = 64 * 1024;

  void adjust(napi_env env, std::int64_t delta) noexcept {
    pending_ += delta;
    if (delta >= kBatch || delta <= -kBatch || pending_ >= kBatch || pending_ <= -kBatch) {
      std::int64_t total = 0;
      if (napi_adjust_external_memory(env, pending_, &total) == napi_ok) {
        reported_ += pending_;
        pending_ = 0;
      }
    }
  }
  std::int64_t reported() const noexcept { return reported_; }
  std::int64_t pending() const noexcept { return pending_; }

 private:
  std::int64_t pending_ = 0;   // the unreported difference
  std::int64_t reported_ = 0;  // what V8 currently believes we hold
};

struct DispatcherDeleter {
  void operator()(Dispatcher* d) const noexcept { dispatcher_free(d); }
};
// This environment's dispatcher (seed 000's libdummy, one instance per environment).
using DispatcherPtr = std::unique_ptr<Dispatcher, DispatcherDeleter>;

struct AddonState {
  AddonState(std::uint32_t id, DispatcherPtr d) noexcept
      : env_id(id), js_thread(std::this_thread::get_id()), dispatcher(std::move(d)) {}

  const std::uint32_t env_id;  // 1..255: the env bits of every handle this environment issues
  const std::thread::id js_thread;  // the thread this environment runs JS on
  HandleTable<StringEntry> strings;
  StringLedger ledger;
  ExternalMemory memory;
  SharedBytes* shared_head = nullptr;  // every SharedBytes this state counts (live strings' and view-held ones)

  // Declared before `subscriptions`, so destroyed after them: at teardown every slot cancels its registration
  // (DispatcherRegistration) and frees its boxes while the dispatcher still exists; then dispatcher_free.
  DispatcherPtr dispatcher;
  HandleTable<SubscriptionEntry> subscriptions;
  HandlerLedger handlers;
  SendFrame* send_frame = nullptr;  // the innermost send() in progress (a stack through SendFrame::outer)

  // Native-thread delivery (delivery.hpp, posts.cpp). `producers` is declared after `dispatcher`, so destroyed before
  // it: a producer posts to the dispatcher until producer_free has joined it.
  HandleTable<ProducerEntry> producers;
  ProducerLedger producer_ledger;
  PostLedger posts;
  DeliveryTsfn tsfn;  // this environment's threadsafe function; aborted by the teardown hook, then Node's to delete
  std::atomic<bool> tsfn_closed{false};          // set by the teardown hook: nothing may be queued any more
  std::atomic<std::uint64_t> tsfn_items{0};      // items queued on the threadsafe function, not yet taken by call_js
  WorkerBatch worker_batch;                      // the worker thread's only (see WorkerBatch)
  // JS thread only:
  std::uint32_t loop_holds = 0;  // pending posts + unfinished producers; the threadsafe function is ref'd while > 0
  std::unordered_map<std::uint64_t, PendingPromise> promises;  // by token: post()s and producers' `done`
  std::uint64_t next_token = 1;
  napi_ref promise_constructor = nullptr;  // the realm's Promise, as it was when the addon loaded
  napi_ref promise_executor = nullptr;     // a native executor that fills `promise_sink`
  PendingPromise* promise_sink = nullptr;  // where that executor puts (resolve, reject), during new_promise only
};

}  // namespace napi_ownership
