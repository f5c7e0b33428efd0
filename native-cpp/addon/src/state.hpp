// Per-environment addon state: a member of the Addon (addon.hpp), which node-addon-api keeps in Node-API instance data
// and deletes at environment teardown (never in a global: workers load the addon too).
#pragma once

#include <napi.h>

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

// Reports live native bytes to V8 with napi_adjust_external_memory, batched (contract "Ledger and memory pressure"):
// once the unreported difference reaches 64 KiB, or at once for a single string of 64 KiB or more. The difference is
// atomic: a view's finalizer may run on another thread (see SharedLedger) and leaves what it owes for the JS thread.
class ExternalMemory {
 public:
  static constexpr std::int64_t kBatch = 64 * 1024;

  // JS thread only: records `delta` and reports the batch when it is due.
  void adjust(Napi::Env env, std::int64_t delta) noexcept {
    const std::int64_t pending = pending_.fetch_add(delta, std::memory_order_relaxed) + delta;
    if (delta < kBatch && delta > -kBatch && pending < kBatch && pending > -kBatch) return;
    const std::int64_t batch = pending_.exchange(0, std::memory_order_relaxed);
#ifdef NAPI_OWNERSHIP_SEED_BUG_NO_EXTERNAL_MEMORY
    // Seeded bug 8 (leak-test self-test builds only): V8 is never told. Nothing leaks (the fallback frees everything
    // it is given), but nothing prompts the collections that let it: test/fallback.test.ts's bound must fail.
    (void)env;
    (void)batch;
#else
    try {
      Napi::MemoryManagement::AdjustExternalMemory(env, batch);
      reported_.fetch_add(batch, std::memory_order_relaxed);
    } catch (...) {  // Napi::Error: not reported; kept for the next batch
      pending_.fetch_add(batch, std::memory_order_relaxed);
    }
#endif
  }
  // Any thread: records `delta` without calling Node-API; the JS thread's next batch reports it.
  void defer(std::int64_t delta) noexcept { pending_.fetch_add(delta, std::memory_order_relaxed); }

  // For stats(): what V8 was told, net, and what is still waiting for the next batch.
  std::int64_t reported() const noexcept { return reported_.load(std::memory_order_relaxed); }
  std::int64_t pending() const noexcept { return pending_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> pending_{0};   // the unreported difference
  std::atomic<std::int64_t> reported_{0};  // the net sum handed to napi_adjust_external_memory
};

// What views' finalizers update: released strings whose bytes views still hold, and the external-memory report.
// Shared (shared_ptr) by the state and every SharedBytes, because a buffer may be finalized after the state was
// deleted at teardown. Atomic, because a runtime may run a view's finalizer on another thread: Deno 2.9 calls it from
// V8's backing-store deleter, which can run on a V8 background thread (Node defers it to the JS thread).
struct SharedLedger {
  std::atomic<std::uint64_t> view_held{0};        // released strings whose bytes views still hold
  std::atomic<std::uint64_t> view_held_bytes{0};  // ...and their bytes
  std::atomic<std::uint64_t> view_finalized_off_thread{0};  // view finalizers run off this environment's JS thread
  ExternalMemory memory;
  const std::thread::id js_thread = std::this_thread::get_id();
};

// A string's bytes once a view has lent them to JS (seed 004's MemoryGuard: whoever can reach the bytes keeps them
// alive). Co-owned by the string's table slot, while its handle is live, and by every external ArrayBuffer over them
// whose finalizer has not run yet. Freed by cpp_free_string (via `bytes`) when the last of those lets go: free_string
// ends the handle at once, but a view taken before keeps reading the same bytes. The shares are one atomic word: a
// buffer may be finalized on another thread while the JS thread releases the handle.
struct SharedBytes {
  static constexpr std::uint32_t kSlotShare = 1u << 31;  // the table slot's share; the bits below count buffers

  SharedBytes(CoreString b, std::size_t n, std::shared_ptr<SharedLedger> l) noexcept
      : bytes(std::move(b)), length(n), ledger(std::move(l)) {}
  CoreString bytes;  // freed by cpp_free_string when this record is deleted
  const std::size_t length;
  std::atomic<std::uint32_t> shares{kSlotShare};  // the owner that takes it to 0 deletes this record
  const std::shared_ptr<SharedLedger> ledger;     // whose ledger counts these bytes (outlives the state if need be)
};

// Weak references (Napi::Weak, refcount 0) to the newest view of a live string, so string_view can hand the same
// Uint8Array out again while it is alive. They never keep the JS objects alive and own nothing: the buffer's share is
// its own. Deleted (napi_delete_reference) when the entry goes: free_string, finalize_string, or ~Addon at teardown,
// which runs in the instance-data finalizer while the env is still valid; never from a view's finalizer.
struct StringView {
  Napi::Reference<Napi::Uint8Array> array;   // the Uint8Array returned by string_view (reused while it is alive)
  Napi::Reference<Napi::ArrayBuffer> buffer;  // its external ArrayBuffer (kept separately: JS may hold view.buffer)

  StringView() = default;
  // Napi::Reference's move only moves two pointers, but is not declared noexcept; the table needs payloads that are.
  StringView(StringView&& other) noexcept : array(std::move(other.array)), buffer(std::move(other.buffer)) {}
  StringView& operator=(StringView&& other) noexcept {
    array = std::move(other.array);
    buffer = std::move(other.buffer);
    return *this;
  }
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
  std::uint64_t view_copies = 0;      // string_view calls that returned a copy (no external buffers allowed)
  std::uint64_t live() const noexcept { return allocated - freed - finalized; }
};

struct DispatcherDeleter {
  void operator()(Dispatcher* d) const noexcept { dispatcher_free(d); }
};
// This environment's dispatcher (seed 000's libdummy, one instance per environment).
using DispatcherPtr = std::unique_ptr<Dispatcher, DispatcherDeleter>;

struct AddonState {
  AddonState(std::uint32_t id, DispatcherPtr d)
      : env_id(id), js_thread(std::this_thread::get_id()), dispatcher(std::move(d)) {}

  const std::uint32_t env_id;  // 1..255: the env bits of every handle this environment issues
  const std::thread::id js_thread;  // the thread this environment runs JS on
  HandleTable<StringEntry> strings;
  StringLedger ledger;
  const std::shared_ptr<SharedLedger> shared = std::make_shared<SharedLedger>();  // views' ledger and V8's report
  bool external_buffers = true;  // false where the runtime refuses external buffers: every view is then a copy

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
  Napi::FunctionReference promise_constructor;  // the realm's Promise, as it was when the addon loaded
  Napi::FunctionReference promise_executor;     // a native executor that fills `promise_sink`
  PendingPromise* promise_sink = nullptr;  // where that executor puts (resolve, reject), during new_promise only
};

}  // namespace napi_ownership
