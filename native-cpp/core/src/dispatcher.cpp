// The dispatcher core (include/napi_ownership/dispatcher.h): seed 000's "libdummy", per instance, thread-safe and
// re-entrant. Standalone on purpose: the Rust addon compiles this one file with the `cc` crate, so it needs nothing but
// the C++17 standard library, pthreads and its public header.
//
// Who decides when the caller may free its FFIWrapper (and the box behind `self_rust_side`):
//   dispatcher_cancel / dispatcher_shutdown, by (1) removing the registration under the mutex and marking it
//   cancelled, so no send can start its callback afterwards, and (2) waiting on `Dispatcher::left` until no OTHER
//   thread is inside that callback. "Inside" is tracked per registration as a list of stack frames (InFlight), one per
//   dispatcher_send that has passed the cancelled check and not yet come back from the callback; each frame carries
//   its thread id, so a callback that cancels its own registration (or one its own thread is inside further up the
//   stack) is never waited for: that would deadlock. When cancel returns 0 the dispatcher is done with the wrapper.
//   The registration RECORD, by contrast, is refcounted (intrusively, the count guarded by the mutex like everything
//   else, so no atomic operations): the dest's bucket holds one reference and every send that copied the record into
//   its current chunk holds one, so a send can still read `cancelled` and unlink its frame after a cancel or a
//   shutdown dropped the record from the bucket. Whoever drops the last reference deletes it. The record only
//   borrows the wrapper; it never owns or frees it.
//
// Cancel in O(1), whatever the bucket holds: a ctx names a slot of `Dispatcher::slots` (its low 32 bits) and that
// slot's generation (its high 32 bits), so cancel finds the record with one array index, and a ctx of a cancelled
// registration never matches the slot's next occupant. Cancel leaves the record in its bucket's vector as a tombstone (`cancelled`, still holding the bucket's
// reference) instead of erasing it (which moved every later entry: 1.6 us among 10,000, quadratic for a storm of
// cancels). A bucket is compacted when its tombstones outnumber its live records (and at least kCompactAfter):
// each compaction moves at most twice as many entries as cancels made since the last one, so a cancel costs O(1)
// amortized, oldest-first or newest-first alike. Registration order is a separate, rising `seq`: tombstones keep
// theirs, so a bucket's vector stays sorted by seq and a send's cursor (binary search on seq) is unaffected by a
// compaction in between two of its chunks.
//
// Locking: one mutex per dispatcher guards every registration and frame list. It is never held while a callback runs,
// so a callback may call handler/cancel/send/shutdown on the same dispatcher. dispatcher_send allocates nothing: it
// walks the registrations in chunks copied under the lock (a cursor on the ctx, which rises with registration order).
//
// Caveat (inherent in "cancel waits for the callback"): two callbacks running on two threads that each cancel the
// other's registration wait for each other forever. A callback may cancel registrations whose callbacks run only on
// its own thread, or on threads that do not wait for it.
//
// Asynchronous delivery (dispatcher_post): a FIFO of owned copies {dest, msg, on_delivered, ctx}, guarded by the same
// mutex, and one worker thread per dispatcher, started by the first post (and again by the first post after a
// shutdown joined it). The worker pops one message at a time and delivers it with dispatcher_send itself, so a posted
// message follows every rule above; the callbacks merely run on the worker. A cancel on another thread (the JS thread,
// in the addons) therefore waits for the worker to leave that callback, exactly as for any other thread: that is safe
// as long as the worker's callbacks never wait for the cancelling thread (the addons' trampolines only enqueue).
//   dispatcher_shutdown on any thread but the worker: marks the worker `stopping` (it finishes the message in hand,
// calls its on_delivered, and ends), takes the queue, drops the registrations, joins the worker, and then calls
// on_delivered(ctx, -1) for every message it took, on the calling thread. Messages posted while it was stopping the
// worker are discarded the same way. On the worker itself (a callback calling shutdown) it cannot join its own thread:
// it discards the queue and drops the registrations, and the worker carries on (idle) until a later shutdown or
// dispatcher_free joins it. A second shutdown that finds another one stopping the worker leaves the join to it (it
// does not wait: the first one may be waiting for this thread's callback frame).
//
// Producers (producer_start): a thread of their own that posts through dispatcher_post, so they add nothing to the
// dispatcher's locking. Their stop flag is an atomic read before each post, and a condition variable wakes the
// interval wait at once (no plain sleep).
#include "napi_ownership/dispatcher.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

// One dispatcher_send frame that passed the cancelled check of a registration and has not yet returned from its
// callback. Lives on that send's stack; linked into Registration::in_flight while it is there (under the mutex).
struct InFlight {
  std::thread::id thread;
  InFlight* next;
};

struct Bucket;

struct Registration {
  Registration(DispatcherCtx c, std::uint64_t s, FFIWrapper* w, Bucket* b) noexcept
      : ctx(c), seq(s), wrapper(w), bucket(b) {}

  const DispatcherCtx ctx;
  const std::uint64_t seq;  // registration order: rises, never reused
  FFIWrapper* const wrapper;  // borrowed from the caller; never read once `cancelled` is set
  Bucket* const bucket;       // the bucket it was registered in; read only while it is live (in its slot)

  // Guarded by Dispatcher::mu.
  std::uint32_t refs = 1;         // the bucket's (until cancel/shutdown) + one per send holding it in a chunk
  bool cancelled = false;
  InFlight* in_flight = nullptr;  // the frames inside this callback, any thread
  std::uint32_t waiters = 0;      // threads in cancel/shutdown waiting for those frames to leave
};

// Drops one reference; the last one deletes the record. Call with Dispatcher::mu held.
void unref(Registration* r) noexcept {
  if (--r->refs == 0) delete r;
}

// A bucket is compacted once it holds more tombstones than this and more than live records.
constexpr std::size_t kCompactAfter = 16;

struct Bucket {
  explicit Bucket(const char* d) : dest(d) {}

  const std::string dest;                   // the dispatcher's own copy of dest; the map's key views it
  std::vector<Registration*> registrations;  // one reference each; registration order (ascending seq);
                                             // live records and tombstones (cancelled) alike
  std::size_t live = 0;                     // entries of `registrations` not cancelled
};

// Drops the bucket's tombstones (and their references), keeping the order of the live records. O(entries).
void compact(Bucket& b) noexcept {
  std::vector<Registration*>& regs = b.registrations;
  std::size_t kept = 0;
  for (Registration* r : regs) {
    if (r->cancelled) {
      unref(r);  // deleted now unless a send still holds it in a chunk
    } else {
      regs[kept++] = r;
    }
  }
  regs.resize(kept);  // shrinking: no allocation, cannot throw
}

using Buckets = std::unordered_map<std::string_view, std::unique_ptr<Bucket>>;

// One dispatcher_post: owned copies of dest and msg, and whom to tell when it was delivered (or discarded).
struct Post {
  std::string dest;
  std::string msg;
  DispatcherDelivered on_delivered;  // may be null: nobody is told
  void* ctx;                         // opaque to the dispatcher; handed back to on_delivered
};
using PostQueue = std::deque<Post>;

bool seq_greater(std::uint64_t seq, const Registration* r) noexcept { return seq < r->seq; }

// A slot of Dispatcher::slots: the live registration that holds it (or none) and the generation of its ctx.
struct Slot {
  Registration* record = nullptr;
  std::uint32_t generation = 0;  // of the current or last occupant; bumped for each new one (1 for the first)
};

DispatcherCtx make_ctx(std::uint32_t slot, std::uint32_t generation) noexcept {
  return (static_cast<DispatcherCtx>(generation) << 32) | slot;  // generation >= 1, so never 0
}

}  // namespace

struct Dispatcher {
  mutable std::mutex mu;
  std::condition_variable left;  // a frame left the callback of a cancelled registration somebody waits for
  Buckets buckets;               // dest -> its registrations; a bucket exists only while it holds a live one
  std::vector<Slot> slots;              // every live (not cancelled) registration, by its ctx's slot
  std::vector<std::uint32_t> free_slots;  // slots without a record; capacity kept >= slots.size() (cancel can't fail)
  std::uint64_t next_seq = 1;           // registration order, never reset
  std::atomic<std::uint32_t> live{0};

  // Asynchronous delivery, guarded by `mu` like everything above.
  PostQueue queue;                 // posted, not yet taken by the worker (or by a shutdown)
  std::condition_variable work;    // the queue gained a message, or `stopping` was set
  std::thread worker;              // joinable from the post that started it until a shutdown takes it to join it
  std::thread::id worker_id;       // the worker's id until it was joined (also while a shutdown is joining it)
  bool stopping = false;           // a shutdown is stopping the worker: it ends after the message in hand
  std::atomic<std::uint32_t> queued{0};  // posted and not yet delivered or discarded (dispatcher_queued)
};

namespace {

bool other_thread_inside(const Registration& r, std::thread::id self) noexcept {
  for (const InFlight* f = r.in_flight; f != nullptr; f = f->next) {
    if (f->thread != self) return true;
  }
  return false;
}

// With `r` already cancelled (no new frame can enter), blocks until no other thread's frame is inside its callback.
// Frames of the calling thread are not waited for: they are further up this very stack.
void wait_for_other_threads(Dispatcher& d, std::unique_lock<std::mutex>& lock, Registration& r) noexcept {
  const std::thread::id self = std::this_thread::get_id();
  if (!other_thread_inside(r, self)) return;
  ++r.waiters;
  d.left.wait(lock, [&] { return !other_thread_inside(r, self); });
  --r.waiters;
}

void unlink(Registration& r, const InFlight* frame) noexcept {
  for (InFlight** p = &r.in_flight; *p != nullptr; p = &(*p)->next) {
    if (*p == frame) {
      *p = frame->next;
      return;
    }
  }
}

// The worker thread: delivers posted messages in order until a shutdown sets `stopping`. Each message is delivered by
// dispatcher_send (so every rule of synchronous delivery holds), then the worker tells its poster. The message's
// copies are the worker's from the pop until they go out of scope, after on_delivered returned.
void worker_main(Dispatcher* d) noexcept {
  std::unique_lock<std::mutex> lock(d->mu);
  for (;;) {
    d->work.wait(lock, [d] { return d->stopping || !d->queue.empty(); });
    if (d->stopping) return;  // the shutdown that set it takes (and discards) what is still queued
    Post post = std::move(d->queue.front());
    d->queue.pop_front();
    lock.unlock();
    const int32_t delivered = dispatcher_send(d, post.dest.c_str(), post.msg.c_str());
    d->queued.fetch_sub(1, std::memory_order_relaxed);  // before on_delivered: who hears of it sees it counted out
    if (post.on_delivered != nullptr) post.on_delivered(post.ctx, delivered);
    post = Post{};  // frees the copies before the lock is taken again
    lock.lock();
  }
}

}  // namespace

// std::mutex::lock and std::condition_variable::wait report only broken invariants (EDEADLK, EINVAL); every function
// below is noexcept, so such a failure ends in std::terminate instead of unwinding into C or Rust. The only expected
// exception, std::bad_alloc in dispatcher_new/dispatcher_handler, is caught and becomes the documented return value.

Dispatcher* dispatcher_new(void) noexcept {
  try {
    return new Dispatcher();  // owned by the caller; freed by dispatcher_free
  } catch (...) {             // std::bad_alloc (from new or a member's constructor)
    return nullptr;
  }
}

// No call on `d` may be in progress, on any thread, including a send further up this thread's stack (a callback must
// not free its own dispatcher): those frames would touch the freed mutex. Shutdown (which may wait) is the safe stop.
void dispatcher_free(Dispatcher* d) noexcept {
  if (d == nullptr) return;
  dispatcher_shutdown(d);
  delete d;
}

DispatcherCtx dispatcher_handler(Dispatcher* d, const char* dest, FFIWrapper* w) noexcept {
  if (d == nullptr || dest == nullptr || w == nullptr || w->callback == nullptr) return 0;
  try {
    std::lock_guard<std::mutex> lock(d->mu);
    const std::string_view key(dest);
    std::unique_ptr<Bucket> fresh;
    Bucket* bucket;
    const auto found = d->buckets.find(key);
    if (found != d->buckets.end()) {
      bucket = found->second.get();
    } else {
      fresh = std::make_unique<Bucket>(dest);  // the dispatcher's copy of dest, freed with the bucket
      bucket = fresh.get();
    }
    std::vector<Registration*>& regs = bucket->registrations;
    if (regs.size() == regs.capacity()) {
      // Full: drop the tombstones first if that frees room enough, else grow.
      if (regs.size() - bucket->live >= std::max<std::size_t>(1, regs.size() / 4)) {
        compact(*bucket);
      } else {
        regs.reserve(std::max<std::size_t>(4, regs.capacity() * 2));
      }
    }
    // A slot for its ctx: a free one, else a new one (room for it, and for it on the free list, reserved first).
    // A slot whose generation would wrap is retired instead, so a ctx is never reused.
    while (!d->free_slots.empty() && d->slots[d->free_slots.back()].generation == UINT32_MAX) d->free_slots.pop_back();
    if (d->free_slots.empty()) {
      if (d->slots.size() >= UINT32_MAX) return 0;
      if (d->slots.size() == d->slots.capacity()) {
        const std::size_t grown = std::max<std::size_t>(16, d->slots.capacity() * 2);  // geometric: O(1) amortized
        d->slots.reserve(grown);
        d->free_slots.reserve(grown);
      }
    }
    if (fresh) d->buckets.emplace(std::string_view(fresh->dest), std::move(fresh));
    auto record = std::unique_ptr<Registration>();
    std::uint32_t slot;
    if (!d->free_slots.empty()) {
      slot = d->free_slots.back();
    } else {
      slot = static_cast<std::uint32_t>(d->slots.size());
    }
    const std::uint32_t generation = (slot < d->slots.size() ? d->slots[slot].generation : 0) + 1;
    try {
      record = std::make_unique<Registration>(make_ctx(slot, generation), d->next_seq, w, bucket);  // borrows w
    } catch (...) {
      if (bucket->registrations.empty()) d->buckets.erase(std::string_view(bucket->dest));  // the fresh one, unused
      throw;
    }
    // Everything that can throw has run: from here on nothing fails, so a bad_alloc above registered nothing.
    if (slot < d->slots.size()) {
      d->free_slots.pop_back();
    } else {
      d->slots.emplace_back();  // capacity reserved above
    }
    d->slots[slot] = Slot{record.get(), generation};
    ++d->next_seq;
    const DispatcherCtx ctx = record->ctx;
    regs.push_back(record.release());  // capacity reserved above; the bucket's reference (refs == 1)
    ++bucket->live;
    d->live.fetch_add(1, std::memory_order_relaxed);
    return ctx;
  } catch (...) {  // std::bad_alloc: nothing was registered and no ctx was used
    return 0;
  }
}

int32_t dispatcher_cancel(Dispatcher* d, const char* dest, DispatcherCtx ctx) noexcept {
  if (d == nullptr || dest == nullptr) return -2;
  std::unique_ptr<Bucket> emptied;  // freed after the lock: the bucket (and its dest copy) if this was its last record
  {
    std::unique_lock<std::mutex> lock(d->mu);
    const auto slot = static_cast<std::uint32_t>(ctx & UINT32_MAX);
    if (slot >= d->slots.size()) return -1;  // never issued
    Slot& held = d->slots[slot];
    // Never registered, already cancelled, or shut down: the slot is empty or holds a later registration.
    if (held.record == nullptr || held.record->ctx != ctx) return -1;
    Registration* const record = held.record;
    Bucket& bucket = *record->bucket;
    if (bucket.dest != std::string_view(dest)) return -1;  // not under this dest: it stays registered
    held.record = nullptr;
    d->free_slots.push_back(slot);  // capacity kept >= slots.size(): cannot allocate
    d->live.fetch_sub(1, std::memory_order_relaxed);
    record->cancelled = true;  // no send enters the callback from here on; the bucket keeps it as a tombstone
    // A reference of our own across the wait (which drops the lock: a compaction or another cancel emptying the
    // bucket may drop the bucket's reference meanwhile).
    ++record->refs;
    if (--bucket.live == 0) {
      const auto found = d->buckets.find(std::string_view(bucket.dest));
      for (Registration* r : bucket.registrations) unref(r);  // every one a tombstone now
      bucket.registrations.clear();
      emptied = std::move(found->second);  // freed after the lock, with its dest copy
      d->buckets.erase(found);
    } else if (const std::size_t dead = bucket.registrations.size() - bucket.live;
               dead > kCompactAfter && dead > bucket.live) {
      compact(bucket);
    }
    wait_for_other_threads(*d, lock, *record);
    unref(record);  // deleted now, unless a send (on this thread, further up the stack) still holds it
  }
  return 0;  // the dispatcher is done with the caller's FFIWrapper: the caller may free it now
}

int32_t dispatcher_send(Dispatcher* d, const char* dest, const char* msg) noexcept {
  if (d == nullptr || dest == nullptr || msg == nullptr) return -2;
  const std::string_view key(dest);
  const std::thread::id self = std::this_thread::get_id();

  // The registrations are copied in chunks (each copy holds a reference, so a cancel or shutdown cannot free a record
  // under us) and then delivered one by one, with the lock dropped around each callback. `cursor` is the last seq taken; seqs rise with
  // registration order and are never reused, so "seq > cursor" resumes exactly where the last chunk ended even if the
  // bucket changed meanwhile, and "seq <= newest" leaves registrations made during this send for the next message.
  constexpr std::size_t kChunk = 16;
  Registration* chunk[kChunk];
  std::uint64_t cursor = 0;
  int32_t delivered = 0;

  std::unique_lock<std::mutex> lock(d->mu);
  const std::uint64_t newest = d->next_seq - 1;
  for (;;) {
    const auto found = d->buckets.find(key);  // looked up again each chunk: a callback may have emptied it
    if (found == d->buckets.end()) break;
    const std::vector<Registration*>& regs = found->second->registrations;
    std::size_t n = 0;
    for (auto it = std::upper_bound(regs.begin(), regs.end(), cursor, seq_greater);
         it != regs.end() && (*it)->seq <= newest && n < kChunk; ++it) {
      ++(*it)->refs;  // this send's reference, dropped once it is done with the record
      chunk[n++] = *it;
    }
    if (n == 0) break;
    cursor = chunk[n - 1]->seq;

    for (std::size_t i = 0; i < n; ++i) {
      Registration& r = *chunk[i];
      if (!r.cancelled) {  // cancelled earlier in this send (by a callback) or by another thread: not called
        InFlight frame{self, r.in_flight};
        r.in_flight = &frame;  // from here a cancel on another thread waits for this frame
        const DispatcherCallback callback = r.wrapper->callback;
        void* const box = r.wrapper->self_rust_side;
        lock.unlock();
        callback(box, dest, msg);  // may re-enter; may cancel r, after which nothing here touches r.wrapper again
        lock.lock();
        unlink(r, &frame);
        if (r.waiters != 0) d->left.notify_all();
        ++delivered;
      }
      unref(&r);  // the record itself is freed here if it was cancelled and nothing else holds it
    }
    if (n < kChunk) break;
  }
  return delivered;
}

int32_t dispatcher_shutdown(Dispatcher* d) noexcept {
  if (d == nullptr) return 0;
  Buckets dropped;      // every bucket and dest copy; freed after the lock
  PostQueue discarded;  // every message not delivered yet; told -1 after the worker was joined
  std::thread to_join;  // the worker, if this call stops it
  int32_t count = 0;
  {
    std::unique_lock<std::mutex> lock(d->mu);
    // On the worker itself (a callback calling shutdown) the worker cannot be joined; if another shutdown is already
    // stopping it, that one joins it (waiting for it here could deadlock: it may be waiting for our callback frame).
    const bool on_worker = d->worker_id == std::this_thread::get_id();
    if (!on_worker && !d->stopping && d->worker.joinable()) {
      d->stopping = true;
      to_join = std::move(d->worker);
      d->work.notify_all();
    }
    discarded.swap(d->queue);
    dropped.swap(d->buckets);  // the dispatcher is empty (and usable) from here on
    for (std::uint32_t i = 0; i < d->slots.size(); ++i) {
      if (d->slots[i].record == nullptr) continue;
      d->slots[i].record = nullptr;
      d->free_slots.push_back(i);  // capacity kept >= slots.size(): cannot allocate
    }
    d->live.store(0, std::memory_order_relaxed);
    for (auto& entry : dropped) {
      for (Registration* r : entry.second->registrations) {
        if (r->cancelled) continue;  // a tombstone: cancelled (and waited for) already
        r->cancelled = true;
        ++count;
      }
      entry.second->live = 0;
    }
    // Each wait drops the lock, but every record is already cancelled, so no frame can enter any of them meanwhile.
    for (auto& entry : dropped) {
      for (Registration* r : entry.second->registrations) wait_for_other_threads(*d, lock, *r);
    }
    // The buckets' references: records a send (further up this thread's stack) still holds live on until it lets go.
    for (auto& entry : dropped) {
      for (Registration* r : entry.second->registrations) unref(r);
      entry.second->registrations.clear();
    }
  }
  if (to_join.joinable()) {
    to_join.join();  // it finished the message in hand (its on_delivered was called) and ended
    std::lock_guard<std::mutex> lock(d->mu);
    // Posted while the worker was stopping (no post starts a worker then): discarded too.
    for (Post& post : d->queue) discarded.push_back(std::move(post));
    d->queue.clear();
    d->worker_id = std::thread::id();
    d->stopping = false;  // the next post starts a new worker
  }
  d->queued.fetch_sub(static_cast<std::uint32_t>(discarded.size()), std::memory_order_relaxed);
  for (const Post& post : discarded) {
    if (post.on_delivered != nullptr) post.on_delivered(post.ctx, -1);  // on this thread; may post again
  }
  return count;  // the dispatcher is done with every FFIWrapper it had
}

uint32_t dispatcher_live(const Dispatcher* d) noexcept {
  return d == nullptr ? 0 : d->live.load(std::memory_order_relaxed);
}

int32_t dispatcher_post(Dispatcher* d, const char* dest, const char* msg, DispatcherDelivered on_delivered,
                        void* ctx) noexcept {
  if (d == nullptr || dest == nullptr || msg == nullptr) return -2;
  try {
    Post post{dest, msg, on_delivered, ctx};  // the copies, owned by the queue from the push on
    std::lock_guard<std::mutex> lock(d->mu);
    d->queue.push_back(std::move(post));
    if (!d->stopping && !d->worker.joinable()) {
      try {
        d->worker = std::thread(worker_main, d);  // joined by dispatcher_shutdown (or dispatcher_free)
        d->worker_id = d->worker.get_id();
      } catch (...) {  // std::system_error: no thread, so nobody would ever deliver it
        d->queue.pop_back();
        return -3;
      }
    }
    d->queued.fetch_add(1, std::memory_order_relaxed);
    d->work.notify_one();
    return 0;
  } catch (...) {  // std::bad_alloc (the copies or the queue's growth): nothing was queued
    return -3;
  }
}

uint32_t dispatcher_queued(const Dispatcher* d) noexcept {
  return d == nullptr ? 0 : d->queued.load(std::memory_order_relaxed);
}

struct DispatcherProducer {
  DispatcherProducer(Dispatcher* dispatcher, const char* destination, uint32_t n, uint32_t interval,
                     DispatcherDelivered delivered, void* delivered_ctx, DispatcherProducerFinished finished,
                     void* finished_context)
      : d(dispatcher), dest(destination), count(n), interval_ms(interval), on_delivered(delivered), ctx(delivered_ctx),
        on_finished(finished), finished_ctx(finished_context) {}

  Dispatcher* const d;  // borrowed; must outlive the producer
  const std::string dest;
  const uint32_t count;
  const uint32_t interval_ms;
  const DispatcherDelivered on_delivered;
  void* const ctx;
  const DispatcherProducerFinished on_finished;
  void* const finished_ctx;

  std::atomic<bool> stop{false};  // read before every post; also set under `mu` so the interval wait cannot miss it
  std::mutex mu;
  std::condition_variable wake;   // stop was requested
  std::mutex join_mu;             // one joiner at a time (producer_stop may be called from several threads)
  std::thread thread;             // joined by producer_stop
  // Written by the thread before it ends; read after the join.
  uint32_t posted = 0;
  bool interrupted = false;  // it ended because `stop` was set, before posting all `count`
};

namespace {

void producer_main(DispatcherProducer* p) noexcept {
  uint32_t posted = 0;
  char text[16];
  for (uint32_t i = 0; i < p->count; ++i) {
    if (i != 0 && p->interval_ms != 0) {
      std::unique_lock<std::mutex> lock(p->mu);
      p->wake.wait_for(lock, std::chrono::milliseconds(p->interval_ms), [p] { return p->stop.load(); });
    }
    if (p->stop.load(std::memory_order_acquire)) {
      p->interrupted = true;
      break;
    }
    *std::to_chars(text, text + sizeof text - 1, i).ptr = '\0';  // the decimal text of i (at most 10 digits)
    if (dispatcher_post(p->d, p->dest.c_str(), text, p->on_delivered, p->ctx) != 0) break;  // out of memory: give up
    ++posted;
  }
  p->posted = posted;  // read by producer_stop after the join
  if (p->on_finished != nullptr) p->on_finished(p->finished_ctx, posted);
}

}  // namespace

DispatcherProducer* producer_start(Dispatcher* d, const char* dest, uint32_t count, uint32_t interval_ms,
                                   DispatcherDelivered on_delivered, void* ctx, DispatcherProducerFinished on_finished,
                                   void* finished_ctx) noexcept {
  if (d == nullptr || dest == nullptr) return nullptr;
  try {
    // Owned by the caller from the return on; freed by producer_free.
    auto p = std::make_unique<DispatcherProducer>(d, dest, count, interval_ms, on_delivered, ctx, on_finished,
                                                  finished_ctx);
    p->thread = std::thread(producer_main, p.get());
    return p.release();
  } catch (...) {  // std::bad_alloc or std::system_error (no thread): nothing runs
    return nullptr;
  }
}

int32_t producer_stop(DispatcherProducer* p) noexcept {
  if (p == nullptr) return 0;
  bool first;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    first = !p->stop.exchange(true, std::memory_order_acq_rel);
    p->wake.notify_all();
  }
  std::lock_guard<std::mutex> join_lock(p->join_mu);
  if (p->thread.joinable()) p->thread.join();  // it saw `stop`, called on_finished and ended
  // Early: this call asked first, and the thread saw the request before it had posted everything.
  return first && p->interrupted ? 1 : 0;
}

void producer_free(DispatcherProducer* p) noexcept {
  if (p == nullptr) return;
  (void)producer_stop(p);
  delete p;
}
