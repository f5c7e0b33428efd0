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

// The zero-copy view of a string, if one was handed out. Both references are weak (refcount 0): they never keep the
// JS objects alive, they only let us find them again. The ArrayBuffer borrows the string's bytes, so it must be
// detached before those bytes are freed.
struct StringView {
  napi_ref array = nullptr;   // the Uint8Array returned by string_view (reused while it is alive)
  napi_ref buffer = nullptr;  // its external ArrayBuffer (kept separately: JS may hold view.buffer alone)
};

struct StringEntry {
  CoreString bytes;  // owned by this entry; freed by cpp_free_string when free_string/finalize_string/teardown drops it
  std::size_t length = 0;  // bytes without the NUL
  StringView view;
};

struct StringLedger {
  std::uint64_t allocated = 0;
  std::uint64_t freed = 0;
  std::uint64_t finalized = 0;
  std::uint64_t live_bytes = 0;
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
  // worker_threads.markAsUntransferable (a strong reference, deleted at teardown), or null where Node cannot give it
  // to us (process.getBuiltinModule arrived in Node 20.16).
  napi_ref mark_untransferable = nullptr;
  HandleTable<StringEntry> strings;
  StringLedger ledger;
  ExternalMemory memory;

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
