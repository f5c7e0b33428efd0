/*
 * napi-ownership dispatcher core: seed 000's "libdummy", a message dispatcher keyed by destination. Plain C ABI, no
 * Node. Both addons register with it: the C++ addon directly, the Rust addon through seed 000's handler_/cancel_.
 *
 * Ownership
 * - The caller owns the FFIWrapper and whatever `self_rust_side` points to. The dispatcher only borrows them, from
 *   dispatcher_handler() until dispatcher_cancel() (or dispatcher_shutdown()) returns. After that the caller may free
 *   them: the dispatcher never touches them again.
 * - The dispatcher owns its registration records and the copies of `dest` it keeps; dispatcher_shutdown() frees them
 *   all (seed 000 added shutdown so valgrind reports 0 leaks) and dispatcher_free() frees the instance.
 *
 * Threads and re-entrancy
 * - Every function may be called from any thread; a mutex guards the registrations, and it is never held while a
 *   callback runs. So a callback may call dispatcher_handler/cancel/send on the same dispatcher (re-entrancy).
 * - A handler cancelled during a send is not called afterwards, not even later in that same send. A handler
 *   registered during a send receives the next message, not the current one. Delivery is in registration order.
 * - When dispatcher_cancel() returns 0, no other thread is inside that handler's callback and none will enter it: if
 *   one was inside, cancel waited for it to leave. The calling thread itself may still be inside the callback (a
 *   callback that cancels its own registration): then the callback must not use its FFIWrapper or `self` after
 *   cancel returns, and neither does the dispatcher after the callback returns.
 *
 * State lives in a Dispatcher instance, never in a global: each Node-API environment (main thread, every worker)
 * creates its own.
 */
#ifndef NAPI_OWNERSHIP_DISPATCHER_H
#define NAPI_OWNERSHIP_DISPATCHER_H

#include <stdint.h>

#ifdef __cplusplus
#define NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT noexcept
extern "C" {
#else
#define NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT
#endif

/* Called once per message delivered to a handler. `dest` and `msg` are borrowed for the call only. Must not throw or
 * unwind (C ABI); report failures through `self`. */
typedef void (*DispatcherCallback)(void* self_rust_side, const char* dest, const char* msg);

/* Seed 000's FFIWrapper: { callback, self_rust_side }. Owned by the caller; borrowed by the dispatcher while registered. */
typedef struct FFIWrapper {
  DispatcherCallback callback;
  void* self_rust_side;
} FFIWrapper;

typedef struct Dispatcher Dispatcher;

/* A registration's id ("ctx" in seed 000). Never reused within a dispatcher; 0 is never a valid ctx. */
typedef uint64_t DispatcherCtx;

/* A new, empty dispatcher, or NULL if allocation failed. Freed by dispatcher_free(). */
Dispatcher* dispatcher_new(void) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Shuts down (see dispatcher_shutdown) and frees the instance. NULL is a no-op. */
void dispatcher_free(Dispatcher* d) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Registers `w` for messages to `dest` (copied). Returns its ctx, or 0 if an argument is NULL, `w->callback` is NULL,
 * or allocation failed (then nothing was registered). */
DispatcherCtx dispatcher_handler(Dispatcher* d, const char* dest, FFIWrapper* w) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Cancels registration `ctx` under `dest`. Returns 0 on success; -1 if no such registration exists under that `dest`
 * (never registered, already cancelled, shut down, or registered under another dest: it then stays registered);
 * -2 if an argument is NULL. On success the dispatcher is done with the FFIWrapper (see Threads above). */
int32_t dispatcher_cancel(Dispatcher* d, const char* dest, DispatcherCtx ctx) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Delivers `msg` synchronously, on the calling thread, to every handler registered under `dest` when the send began
 * and still registered when its turn comes. Returns how many callbacks ran (>= 0), or -2 if an argument is NULL. */
int32_t dispatcher_send(Dispatcher* d, const char* dest, const char* msg) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Drops every registration and frees everything the dispatcher holds except the instance, which stays usable.
 * Returns how many registrations were dropped. Afterwards the dispatcher is done with every FFIWrapper it had. */
int32_t dispatcher_shutdown(Dispatcher* d) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Registrations currently held (for ledgers and tests). */
uint32_t dispatcher_live(const Dispatcher* d) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* ---- Asynchronous delivery: the dispatcher's own worker thread -------------------------------------------------
 * dispatcher_post() queues a copy of (dest, msg) and returns at once. The dispatcher's worker thread (started on the
 * first post, joined by dispatcher_shutdown/dispatcher_free) takes messages in order and delivers each exactly as
 * dispatcher_send would, but on the worker thread: callbacks then run OFF the caller's thread, which is what a real C
 * library does. After a message's callbacks ran, the worker calls `on_delivered(ctx, delivered)` (delivered = how
 * many callbacks ran for it), also on the worker thread. Callbacks and on_delivered must not block waiting for the
 * thread that calls dispatcher_cancel (see the header's Threads notes: cancel waits for them).
 *
 * dispatcher_shutdown() also discards queued messages that were not delivered yet: for each, on_delivered(ctx, -1)
 * is called (on the calling thread), so the owner of `ctx` can release it. Every successful post is told exactly
 * once: delivered (>= 0, on the worker) or discarded (-1). A message the worker already holds when shutdown begins is
 * still delivered (to the handlers not yet dropped) before the join. Called from a callback on the worker thread,
 * shutdown cannot join that thread: it discards and drops as usual, and the worker stays, idle, until a later shutdown
 * or dispatcher_free joins it. The next post after a shutdown starts a new worker. */
typedef void (*DispatcherDelivered)(void* ctx, int32_t delivered);

/* 0 if queued; -2 if `d`, `dest` or `msg` is NULL (`on_delivered` may be NULL: nobody is told; `ctx` is opaque);
 * -3 if allocation failed or the worker thread could not start (nothing was queued and on_delivered will not be
 * called). */
int32_t dispatcher_post(Dispatcher* d, const char* dest, const char* msg, DispatcherDelivered on_delivered,
                        void* ctx) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Messages posted and not yet delivered or discarded (a message leaves the count after its callbacks ran, just
 * before its on_delivered is called). */
uint32_t dispatcher_queued(const Dispatcher* d) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* ---- A native producer: a thread of its own that posts ------------------------------------------------------------
 * producer_start() starts a thread that posts `count` messages to `dest` through dispatcher_post, waiting
 * `interval_ms` between them (0: none), with on_delivered/ctx passed to each post as given. When it has posted them
 * all, or was stopped, it calls `on_finished(finished_ctx, posted)` on its own thread and ends. Message i (from 0) is
 * the decimal text of i. The dispatcher must outlive the producer. */
typedef struct DispatcherProducer DispatcherProducer;
typedef void (*DispatcherProducerFinished)(void* finished_ctx, uint32_t posted);

/* NULL if `d` or `dest` is NULL or allocation / thread start failed (`on_delivered`/`on_finished` may be NULL).
 * Freed by producer_free(). If a post fails (-3), the producer stops there and reports what it posted. */
DispatcherProducer* producer_start(Dispatcher* d, const char* dest, uint32_t count, uint32_t interval_ms,
                                   DispatcherDelivered on_delivered, void* ctx, DispatcherProducerFinished on_finished,
                                   void* finished_ctx) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Asks the producer to stop (it wakes from its interval wait at once) and joins its thread: when this returns, the
 * thread has ended and on_finished has been called. Returns 1 if this call stopped it early, 0 if it had already
 * finished. Idempotent. Must not be called from the producer's own callbacks. */
int32_t producer_stop(DispatcherProducer* p) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

/* Stops (as producer_stop) and frees the producer. NULL is a no-op. */
void producer_free(DispatcherProducer* p) NAPI_OWNERSHIP_DISPATCHER_NOEXCEPT;

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NAPI_OWNERSHIP_DISPATCHER_H */
