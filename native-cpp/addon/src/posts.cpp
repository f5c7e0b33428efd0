// The native-thread delivery exports of docs/raw-contract.md ("Native-thread delivery"): post, produce,
// producer_stop, finalize_producer, producer_active, over this environment's dispatcher worker and one threadsafe
// function. Ownership of what travels is laid out in delivery.hpp.
//
// Threads. The dispatcher's worker runs the subscription trampolines, which only note a handle in the WorkerBatch, and
// then on_delivered, which queues one item per message (NonBlockingCall on an unbounded queue: it never waits). The
// producers' threads post and call on_finished, which may queue the "finished" item. None of them ever waits for the
// JS thread, so a cancel() on the JS thread, which waits for the worker to leave the very callback it cancels
// (dispatcher_cancel), cannot deadlock; and producer_stop, which joins a producer thread, cannot either.
//
// "No callback after cancel() returned true": the worker's items name subscriptions by handle; call_js looks each one
// up just before calling it, and cancel() released the slot (its generation moved on) before returning.
#include "posts.hpp"

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "args.hpp"
#include "binding.hpp"
#include "delivery.hpp"
#include "errors.hpp"
#include "fast.hpp"
#include "handle.hpp"
#include "handle_table.hpp"
#include "napi_ownership/dispatcher.h"
#include "state.hpp"
#include "subscription.hpp"

namespace napi_ownership {

void free_item(Item* item) noexcept {
  if (item == nullptr) return;
  if (item->type == Item::Type::kMessage) {
    delete static_cast<MessageItem*>(item);  // and its message copy and handle list
  } else {
    delete static_cast<ProducerRun*>(item);
  }
}

namespace {

using handle::Kind;
using ProducerKey = HandleTable<ProducerEntry>::Key;

// ---- promises (see PendingPromise) ---------------------------------------------------------------------------------

// The executor given to `new Promise(executor)`: keeps (resolve, reject) by strong references in the state's sink.
Napi::Value capture_executor(const Napi::CallbackInfo& info) {
  PendingPromise* sink = static_cast<AddonState*>(info.Data())->promise_sink;
  if (sink == nullptr) return {};  // not called by new_promise (someone got hold of the executor): nothing to do
  // A constructor that is not the real Promise (the realm's was patched before the addon loaded) may call its executor
  // twice: the last call wins, and the references of the earlier one are deleted, not leaked.
  sink->resolve.Reset();
  sink->reject.Reset();
  if (!info[0].IsFunction() || !info[1].IsFunction()) return {};  // new_promise reports it
  sink->resolve = Napi::Persistent(info[0].As<Napi::Function>());
  sink->reject = Napi::Persistent(info[1].As<Napi::Function>());
  return {};
}

// Deletes the promise's references (resolve, reject, what a producer's `done` kept): it will never be settled.
void drop_promise(PendingPromise& promise) noexcept {
  promise.resolve.Reset();
  promise.reject.Reset();
  promise.thrown.clear();
}

Napi::Function helper(Napi::Env env, const Napi::FunctionReference& ref) {
  Napi::Function value = ref.Value();
  if (value.IsEmpty()) errors::throw_internal(env, "a promise helper was collected");
  return value;
}

// A new promise; `out` receives its resolve/reject references (owned by the caller from here: settle or drop them).
//
// `new Promise(executor)` runs JS: a promise init hook (async_hooks, v8.promiseHooks) runs before our executor, and
// may call post() or produce() again. So the sink is a stack: each new_promise puts its own `out` there for the
// duration of its construction and puts the outer one back, and the executor fills whichever is innermost.
Napi::Object new_promise(Napi::Env env, AddonState& state, PendingPromise& out) {
  const Napi::Function constructor = helper(env, state.promise_constructor);
  const Napi::Function executor = helper(env, state.promise_executor);
  PendingPromise* const outer = state.promise_sink;
  state.promise_sink = &out;
  Napi::Object promise;
  try {
    promise = constructor.New({executor});
  } catch (...) {  // a hook or a patched constructor threw: that is the error
    state.promise_sink = outer;
    drop_promise(out);
    throw;
  }
  state.promise_sink = outer;
  if (out.resolve.IsEmpty() || out.reject.IsEmpty()) {
    drop_promise(out);
    errors::throw_internal(env, "could not keep the promise's resolve/reject");
  }
  return promise;
}

// Registers `promise` under a fresh token (the map owns its references from here). Throws ERR_NATIVE_ALLOC, after
// dropping the references, if the map cannot grow.
std::uint64_t keep_promise(Napi::Env env, AddonState& state, PendingPromise& promise, const char* what) {
  const std::uint64_t token = state.next_token++;
  try {
    state.promises.emplace(token, std::move(promise));
  } catch (...) {  // std::bad_alloc
    drop_promise(promise);
    errors::throw_alloc_message(env, std::string("could not allocate ") + what);
  }
  return token;
}

// Takes the promise of `token` out of the map: the caller owns its references from here (conclude or drop them).
// Taken BEFORE anything that can run JS is done for it (its AggregateError, the producer's warning, settling it: a
// getter, a patched emitWarning or a promise hook may post, produce or shut down), so no reference into the map is
// ever held across JS. False if there is none (cannot happen: each token is settled once).
bool take_promise(AddonState& state, std::uint64_t token, PendingPromise& out) noexcept {
  const auto found = state.promises.find(token);
  if (found == state.promises.end()) return false;
  out = std::move(found->second);  // a move: never allocates
  state.promises.erase(found);
  return true;
}

// Leaves no exception pending (what a hook or a failed build left): call_js has no JS caller to hand it to.
void clear_exception(Napi::Env env) noexcept {
  try {
    if (env.IsExceptionPending()) (void)env.GetAndClearPendingException();
  } catch (...) {
  }
}

// Resolves (ok) or rejects `promise` with `value` (nothing if `value` is null), then deletes its references.
// Resolving or rejecting can run JS (a promise hook; resolving with a thenable): `promise` is the caller's, not the
// map's.
void conclude(Napi::Env env, PendingPromise& promise, bool ok, napi_value value) noexcept {
  try {
    const Napi::Function settle = (ok ? promise.resolve : promise.reject).Value();
    napi_value ignored = nullptr;
    if (value != nullptr && !settle.IsEmpty()) {
      (void)fast::call_collecting(env, settle, env.Undefined(), value, &ignored);  // resolve/reject do not throw
    }
  } catch (...) {  // Napi::Error: could not reach the function; the promise stays pending
  }
  drop_promise(promise);
}

// ---- the event loop: ref'd while a post is pending or a producer has not finished -----------------------------------

void hold_loop(Napi::Env env, AddonState& state) noexcept {
  if (state.loop_holds++ == 0) (void)state.tsfn.Ref(env);
}

void release_loop(Napi::Env env, AddonState& state) noexcept {
  if (state.loop_holds != 0 && --state.loop_holds == 0) (void)state.tsfn.Unref(env);
}

// ---- off the JS thread: queueing items -------------------------------------------------------------------------

// Hands `item` to the threadsafe function (call_js deletes it), or deletes it here once the teardown closed it.
void enqueue(AddonState& state, Item* item) noexcept {
  if (!state.tsfn_closed.load(std::memory_order_acquire)) {
    state.tsfn_items.fetch_add(1, std::memory_order_relaxed);
    if (state.tsfn.NonBlockingCall(item) == napi_ok) return;  // unbounded queue: never napi_queue_full
    state.tsfn_items.fetch_sub(1, std::memory_order_relaxed);
  }
  free_item(item);  // nobody will process it: no JS runs any more
}

// The worker's batch for the message just delivered moves into its item (on the worker thread). A few handles are
// copied into the item, so the batch keeps its capacity; more are handed over with the vector.
void take_batch(AddonState& state, MessageItem& item) noexcept {
  WorkerBatch& batch = state.worker_batch;
  item.message.swap(batch.message);
  batch.message.clear();
  if (batch.handles.size() <= MessageItem::kInline) {
    for (const std::uint64_t h : batch.handles) item.inline_handles[item.inline_count++] = h;
  } else {
    item.more.swap(batch.handles);
  }
  batch.handles.clear();
}

// on_delivered of post(): `ctx` is the MessageItem post() allocated. On the worker (or, -1, on a shutting-down thread).
void on_post_delivered(void* ctx, std::int32_t delivered) noexcept {
  MessageItem* const item = static_cast<MessageItem*>(ctx);
  AddonState& state = *item->state;
  item->delivered = delivered;
  if (delivered >= 0) take_batch(state, *item);
  enqueue(state, item);
}

// on_delivered of a producer's posts: `ctx` is its ProducerRun.
void on_produced_delivered(void* ctx, std::int32_t delivered) noexcept {
  ProducerRun* const run = static_cast<ProducerRun*>(ctx);
  AddonState& state = *run->state;  // read now: once the balance is updated, `run` may belong to another thread
  MessageItem* const item = new (std::nothrow) MessageItem(&state, run->token);  // set before the thread started
  if (item != nullptr) {
    item->from_producer = true;
    item->delivered = delivered;
    if (delivered >= 0) take_batch(state, *item);
    enqueue(state, item);
  } else if (delivered >= 0) {  // out of memory: these deliveries are dropped; the batch is emptied for the next one
    state.worker_batch.message.clear();
    state.worker_batch.handles.clear();
  }
  if (run->balance.fetch_sub(1, std::memory_order_acq_rel) == 1) enqueue(state, run);  // the last one: finished
}

// on_finished of a producer, on its own thread: `ctx` is its ProducerControl (alive until producer_free joined).
void on_producer_finished(void* ctx, std::uint32_t posted) noexcept {
  ProducerControl* const control = static_cast<ProducerControl*>(ctx);
  ProducerRun* const run = control->run;
  AddonState& state = *run->state;
  control->posting.store(false, std::memory_order_release);
  run->posted = posted;
  const std::int64_t before = run->balance.fetch_add(posted, std::memory_order_acq_rel);
  if (before + static_cast<std::int64_t>(posted) == 0) enqueue(state, run);  // every post already told
}

// ---- on the JS thread: call_js ---------------------------------------------------------------------------------

// A producer's message: nobody awaits its messages one by one, so what their callbacks threw is kept with its `done`
// (the first kProducerErrorsKept values, all counted) until finish() reports it.
void record_producer_errors(Napi::Env env, AddonState& state, std::uint64_t token,
                            const std::vector<napi_value>& thrown, std::size_t unrecorded) noexcept {
  const auto found = state.promises.find(token);
  if (found == state.promises.end()) return;  // cannot happen: `done` settles only after its producer's last message
  PendingPromise& done = found->second;
  done.thrown_count += thrown.size() + unrecorded;
  for (const napi_value error : thrown) {
    if (done.thrown.size() >= kProducerErrorsKept) break;
    try {
      // Not every value can be referenced at this Node-API version (a thrown primitive): Persistent throws, and the
      // value is only counted. A reference that cannot be stored (std::bad_alloc) is deleted on the way out.
      done.thrown.push_back(Napi::Persistent(Napi::Value(env, error)));
    } catch (...) {
    }
  }
}

// Calls the live subscriptions of one delivered message, then settles its post (or, for a producer's message, records
// what its callbacks threw for its `done`).
void deliver(Napi::Env env, AddonState& state, MessageItem& item) noexcept {
  std::vector<napi_value> thrown;  // in this call's handle scope; allocates only once something throws
  std::size_t unrecorded = 0;
  std::uint32_t ran = 0;
  try {
    const Napi::Value receiver = env.Undefined();
    Napi::Value message;
    for (std::size_t i = 0, n = item.handle_count(); i < n; ++i) {
      const handle::Fields fields = handle::decode(item.handle_at(i));
      SubscriptionEntry* const entry = state.subscriptions.find({fields.slot, fields.generation});
      if (entry == nullptr) {  // cancelled (or finalized, or shut down) since the worker called its trampoline
        ++state.posts.skipped;
        continue;
      }
      const Napi::Function function = entry->box->function.Value();
      if (function.IsEmpty()) continue;
      if (message.IsEmpty()) message = Napi::String::New(env, item.message.data(), item.message.size());
      // `entry` is not used below: the callback may cancel its own subscription (or any other).
      napi_value error = nullptr;
      const fast::CallOutcome outcome = fast::call_collecting(env, function, receiver, message, &error);
      if (outcome == fast::CallOutcome::kCannotRun) break;
      ++ran;  // it ran (and maybe threw)
      if (outcome == fast::CallOutcome::kOk) continue;
      try {
        thrown.push_back(error);
      } catch (...) {
        ++unrecorded;  // std::bad_alloc: still counted in the AggregateError's message
      }
    }
  } catch (...) {  // a Napi::Error making the message string: JS can no longer run
  }
  state.posts.delivered += ran;

  if (item.from_producer) {
    // No JS runs here: the map is only written to (references made), never held across a call.
    if (!thrown.empty() || unrecorded != 0) record_producer_errors(env, state, item.token, thrown, unrecorded);
    return;
  }
  PendingPromise promise;
  const bool found = take_promise(state, item.token, promise);  // ours from here, on every path below
  napi_value outcome = nullptr;
  const bool ok = thrown.empty() && unrecorded == 0;
  try {
    if (ok) {
      outcome = Napi::Number::New(env, ran);
    } else {
      try {
        outcome = errors::callbacks_threw(env, thrown.data(), thrown.size(), thrown.size() + unrecorded,
                                          promise.dest.data(), promise.dest.size());
      } catch (const Napi::Error& e) {
        outcome = e.Value();  // could not build the AggregateError (a getter threw, say): reject with that instead
      }
    }
  } catch (...) {
    outcome = nullptr;
  }
  if (!ok && outcome == nullptr && !thrown.empty()) outcome = thrown[0];  // never "success" for callbacks that threw
  if (found) conclude(env, promise, ok, outcome);
  clear_exception(env);
  release_loop(env, state);
}

// process.emitWarning(<what the callbacks of a producer's messages threw>): the error itself if exactly one was thrown,
// else an AggregateError (errors::callbacks_threw). Leaves no exception pending: one left behind by call_js would be
// reported by Node as a second warning (DEP0168) at this Node-API version. JS runs here (the AggregateError lookup, a
// getter for globalThis.process, emitWarning itself, which may be patched): `done` is the caller's, out of the map.
void warn_thrown(Napi::Env env, const PendingPromise& done) noexcept {
  try {
    std::vector<napi_value> values;
    values.reserve(done.thrown.size());
    for (const Napi::Reference<Napi::Value>& ref : done.thrown) {
      const Napi::Value value = ref.Value();
      if (!value.IsEmpty()) values.push_back(value);
    }
    // process.emitWarning takes an Error (or a string): a lone value of any other kind goes into an AggregateError.
    const bool single_is_error = values.size() == 1 && fast::is_error(env, values[0]);
    const Napi::Value error = errors::callbacks_threw(env, values.data(), values.size(), done.thrown_count,
                                                      done.dest.data(), done.dest.size(), single_is_error);
    const Napi::Object process = env.Global().Get("process").As<Napi::Object>();
    const Napi::Function emit = process.Get("emitWarning").As<Napi::Function>();
    napi_value ignored = nullptr;
    (void)fast::call_collecting(env, emit, process, error, &ignored);
  } catch (...) {  // could not build the error, reach process.emitWarning (Napi::Error) or the list (std::bad_alloc)
  }
  clear_exception(env);
}

// The producer's "finished" item, after all of its messages: reports what their callbacks threw, then resolves `done`
// with the count posted (and drops what it kept).
void finish(Napi::Env env, AddonState& state, ProducerRun& run) noexcept {
  state.posts.posted += run.posted;
  PendingPromise done;
  if (take_promise(state, run.token, done)) {  // ours from here: the warning below runs JS
    if (done.thrown_count != 0) warn_thrown(env, done);
    napi_value posted = nullptr;
    try {
      posted = Napi::Number::New(env, run.posted);
    } catch (...) {  // Napi::Error: `done` stays pending
    }
    conclude(env, done, true, posted);  // also deletes what it kept of the thrown values
    clear_exception(env);
  }
  release_loop(env, state);
}

}  // namespace

void call_js(Napi::Env env, Napi::Function /*unused*/, AddonState* state, Item* item) {
  if (static_cast<napi_env>(env) == nullptr) {
    // Teardown: the threadsafe function is being deleted with items still queued. No JS, no state: just free them.
#ifdef NAPI_OWNERSHIP_SEED_BUG_TSFN_ITEM_LEAKED
    // Seeded bug 4 (leak-test self-test builds only): the item and its message copy are never freed. The volatile
    // store keeps the optimiser from reasoning the pointer away.
    Item* volatile leaked = item;
    (void)leaked;
#else
    free_item(item);
#endif
    return;
  }
  state->tsfn_items.fetch_sub(1, std::memory_order_relaxed);
  if (item->type == Item::Type::kMessage) {
    deliver(env, *state, *static_cast<MessageItem*>(item));
  } else {
    finish(env, *state, *static_cast<ProducerRun*>(item));
  }
  free_item(item);
}

void note_worker_delivery(AddonState& state, std::uint64_t handle, const char* msg) noexcept {
  WorkerBatch& batch = state.worker_batch;
  try {
    if (batch.handles.empty()) batch.message.assign(msg);
    batch.handles.push_back(handle);
  } catch (...) {  // std::bad_alloc: this delivery is dropped (it will not be counted as run)
  }
}

namespace {

// ---- teardown ------------------------------------------------------------------------------------------------------

// The environment's cleanup hook, registered after the threadsafe function, so it runs before the threadsafe
// function's own cleanup. Stops every thread that could still queue an item, then closes the threadsafe function.
void teardown_delivery(AddonState* arg) {
  AddonState& state = *arg;
  // 1. Producers: stop and join each (producer_free); their on_finished may queue their run, still on an open queue.
  (void)state.producers.take_each([](ProducerEntry&&) {});
  // 2. The worker: joined; every post it had not delivered is told -1 here, and queued like any other.
  (void)dispatcher_shutdown(state.dispatcher.get());
  // 3. Nothing else can queue now. Abort (a release with napi_tsfn_abort: the thread count goes to 0 and no queued
  // item may reach JS during cleanup); Node hands each queued item to call_js with env == nullptr when it deletes the
  // threadsafe function, right after this hook.
  // Here, not in ~Addon (the instance-data finalizer): since nodejs/node#55877 (Node 24.14+) Node finalizes a
  // threadsafe function at teardown under its lock and frees it only once its thread count is 0; one never released
  // leaks, and a release from a finalizer run inside that finalization deadlocks.
  state.tsfn_closed.store(true, std::memory_order_release);
  (void)state.tsfn.Abort();
}

// ---- the exports -----------------------------------------------------------------------------------------------

// post(dest, message): Promise<number>, settled on the JS thread with how many callbacks ran.
}  // namespace

Napi::Value post(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
  Utf8Arg dest;
  read_dest(env, info[0], dest);
  Utf8Arg message;
  read_message(env, info[1], message);

  // Owned here until dispatcher_post accepts it as its ctx; from then on: the dispatcher, the threadsafe function,
  // call_js (see delivery.hpp).
  std::unique_ptr<MessageItem> item(new (std::nothrow) MessageItem(&state, 0));
  PendingPromise promise;
  try {
    if (!item) throw std::bad_alloc();
    promise.dest.assign(dest.c_str(), dest.length());
  } catch (const std::bad_alloc&) {
    errors::throw_alloc_message(env, "could not allocate the native post");
  }
  const Napi::Object result = new_promise(env, state, promise);
  item->token = keep_promise(env, state, promise, "the native post");
  if (dispatcher_post(state.dispatcher.get(), dest.c_str(), message.c_str(), on_post_delivered, item.get()) != 0) {
    // -3: the copies or the worker thread: nothing was queued, so nobody will settle the promise: drop it.
    state.promises.erase(item->token);  // its references are deleted with it
    errors::throw_alloc_message(env, "could not queue the native post");
  }
  (void)item.release();  // the dispatcher's ctx now
  state.posts.posted += 1;
  hold_loop(env, state);
  return result;
}

// produce(dest, count, intervalMs): { handle, done }.
Napi::Value produce(const Napi::CallbackInfo& info, AddonState& state) {
  const Napi::Env env = info.Env();
  Utf8Arg dest;
  read_dest(env, info[0], dest);
  const std::uint32_t count = read_uint32(env, info[1], "count", UINT32_MAX);
  const std::uint32_t interval_ms = read_uint32(env, info[2], "intervalMs", 60000);

  std::unique_ptr<ProducerRun> run(new (std::nothrow) ProducerRun(&state, 0));
  std::unique_ptr<ProducerControl> control(new (std::nothrow) ProducerControl());
  PendingPromise promise;
  try {
    if (!run || !control) throw std::bad_alloc();
    promise.dest.assign(dest.c_str(), dest.length());
  } catch (const std::bad_alloc&) {
    errors::throw_alloc_message(env, "could not allocate the native producer");
  }
  control->run = run.get();
  const Napi::Object done = new_promise(env, state, promise);
  run->token = keep_promise(env, state, promise, "the native producer");
  auto forget_promise = [&] { state.promises.erase(run->token); };  // its references are deleted with it

  // The slot first (it owns the control block the thread will use), then the thread.
  std::optional<ProducerKey> key;
  try {
    key = state.producers.insert(ProducerEntry{std::move(control), nullptr});
  } catch (const std::bad_alloc&) {
    key.reset();  // (`control` may have been moved from; it is freed either way)
  }
  if (!key) {
    forget_promise();
    errors::throw_table_full(env, Kind::kProducer);
  }
  ProducerEntry& entry = *state.producers.find(*key);
  DispatcherProducer* const producer =
      producer_start(state.dispatcher.get(), dest.c_str(), count, interval_ms, on_produced_delivered, run.get(),
                     on_producer_finished, entry.control.get());
  if (producer == nullptr) {
    (void)state.producers.take(*key);  // never started: the slot goes back (its generation moves on)
    forget_promise();
    errors::throw_alloc_message(env, "could not start the native producer");
  }
  entry.producer.reset(producer);  // the slot owns the thread from here: producer_free stops and joins it
  (void)run.release();  // owned by the producer's posts and on_finished, then by the threadsafe function
  state.producer_ledger.started += 1;
  hold_loop(env, state);

  // Defined, not assigned: a setter on Object.prototype cannot run JS here.
  return define_object(env, {{"handle", handle_value(env, state, Kind::kProducer, key->generation, key->slot)},
                             {"done", done}});
}

// producer_stop(handle) / finalize_producer(handle): true if this call stopped it early; the slot is released either
// way (false for a released handle).
namespace {

Napi::Value release_producer(const Napi::CallbackInfo& info, AddonState& state, bool finalized) {
  const Napi::Env env = info.Env();
  const std::optional<ProducerKey> key = resolve(env, state, state.producers, info[0], Kind::kProducer);
  if (!key) return Napi::Boolean::New(env, false);
  std::optional<ProducerEntry> taken = state.producers.take(*key);  // ours now; the handle is released
  // Joins the thread (it never waits for this one): on_finished has run when this returns.
  const bool early = producer_stop(taken->producer.get()) == 1;
  (finalized ? state.producer_ledger.finalized : state.producer_ledger.stopped) += 1;
  taken.reset();  // producer_free (already stopped), then the control block
  return Napi::Boolean::New(env, early);
}

}  // namespace

Napi::Value producer_stop_export(const Napi::CallbackInfo& info, AddonState& state) {
  return release_producer(info, state, false);
}
Napi::Value finalize_producer(const Napi::CallbackInfo& info, AddonState& state) {
  return release_producer(info, state, true);
}

// producer_active(handle): still posting? (false for a released handle, no error)
Napi::Value producer_active(const Napi::CallbackInfo& info, AddonState& state) {
  const std::optional<ProducerKey> key = resolve(info.Env(), state, state.producers, info[0], Kind::kProducer);
  const bool active = key && state.producers.find(*key)->control->posting.load(std::memory_order_acquire);
  return Napi::Boolean::New(info.Env(), active);
}

void init_delivery(Napi::Env env, AddonState& state) {
  state.promise_constructor = Napi::Persistent(env.Global().Get("Promise").As<Napi::Function>());
  // The executor's data is the state: it outlives the function (the reference is deleted with the state).
  state.promise_executor =
      Napi::Persistent(Napi::Function::New<capture_executor>(env, "napi_ownership_capture", &state));

  // No JS function: call_js does everything. Unbounded queue (0), one "thread" (the addon itself, released by Abort).
  state.tsfn = DeliveryTsfn::New(env, "napi_ownership_cpp delivery", 0, 1, &state);
  state.tsfn.Unref(env);  // ref'd by hold_loop while something is pending
  // After the threadsafe function (whose own cleanup hook Node registered when creating it): runs before it. Its
  // record is freed by node-addon-api once it ran.
  if (env.AddCleanupHook(teardown_delivery, &state).IsEmpty()) {
    errors::throw_internal(env, "could not add the environment cleanup hook");
  }
}

Napi::Object post_stats(Napi::Env env, const AddonState& state) {
  const PostLedger& ledger = state.posts;
  const double pending = static_cast<double>(dispatcher_queued(state.dispatcher.get())) +
                         static_cast<double>(state.tsfn_items.load(std::memory_order_relaxed));
  return define_object(env, {{"posted", number_value(env, static_cast<double>(ledger.posted))},
                             {"delivered", number_value(env, static_cast<double>(ledger.delivered))},
                             {"skipped", number_value(env, static_cast<double>(ledger.skipped))},
                             {"pending", number_value(env, pending)}});
}

Napi::Object producer_stats(Napi::Env env, const AddonState& state) {
  const ProducerLedger& ledger = state.producer_ledger;
  return define_object(env, {{"live", number_value(env, static_cast<double>(state.producers.live()))},
                             {"started", number_value(env, static_cast<double>(ledger.started))},
                             {"stopped", number_value(env, static_cast<double>(ledger.stopped))},
                             {"finalized", number_value(env, static_cast<double>(ledger.finalized))}});
}

}  // namespace napi_ownership
