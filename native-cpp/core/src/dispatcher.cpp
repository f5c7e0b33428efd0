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
// Locking: one mutex per dispatcher guards every registration and frame list. It is never held while a callback runs,
// so a callback may call handler/cancel/send/shutdown on the same dispatcher. dispatcher_send allocates nothing: it
// walks the registrations in chunks copied under the lock (a cursor on the ctx, which rises with registration order).
//
// Caveat (inherent in "cancel waits for the callback"): two callbacks running on two threads that each cancel the
// other's registration wait for each other forever. A callback may cancel registrations whose callbacks run only on
// its own thread, or on threads that do not wait for it.
#include "napi_ownership/dispatcher.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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

struct Registration {
  Registration(DispatcherCtx c, FFIWrapper* w) noexcept : ctx(c), wrapper(w) {}

  const DispatcherCtx ctx;
  FFIWrapper* const wrapper;  // borrowed from the caller; never read once `cancelled` is set

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

struct Bucket {
  explicit Bucket(const char* d) : dest(d) {}

  const std::string dest;                   // the dispatcher's own copy of dest; the map's key views it
  std::vector<Registration*> registrations;  // one reference each; registration order, which is ascending ctx
};

using Buckets = std::unordered_map<std::string_view, std::unique_ptr<Bucket>>;

bool ctx_less(const Registration* r, DispatcherCtx ctx) noexcept { return r->ctx < ctx; }
bool ctx_greater(DispatcherCtx ctx, const Registration* r) noexcept { return ctx < r->ctx; }

}  // namespace

struct Dispatcher {
  mutable std::mutex mu;
  std::condition_variable left;  // a frame left the callback of a cancelled registration somebody waits for
  Buckets buckets;               // dest -> its registrations; a bucket exists only while it holds one
  DispatcherCtx next_ctx = 1;    // never reset, so a ctx is never reused and 0 is never issued
  std::atomic<std::uint32_t> live{0};
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
    if (regs.size() == regs.capacity()) regs.reserve(std::max<std::size_t>(4, regs.capacity() * 2));
    auto record = std::make_unique<Registration>(d->next_ctx, w);  // borrows w until cancel/shutdown returns
    if (fresh) d->buckets.emplace(std::string_view(fresh->dest), std::move(fresh));
    // Everything that can throw has run: from here on nothing fails, so a bad_alloc above registered nothing.
    regs.push_back(record.release());  // capacity reserved above; the bucket's reference (refs == 1)
    d->live.fetch_add(1, std::memory_order_relaxed);
    return d->next_ctx++;
  } catch (...) {  // std::bad_alloc: nothing was registered and no ctx was used
    return 0;
  }
}

int32_t dispatcher_cancel(Dispatcher* d, const char* dest, DispatcherCtx ctx) noexcept {
  if (d == nullptr || dest == nullptr) return -2;
  std::unique_ptr<Bucket> emptied;  // freed after the lock: the bucket (and its dest copy) if this was its last record
  {
    std::unique_lock<std::mutex> lock(d->mu);
    const auto found = d->buckets.find(std::string_view(dest));
    if (found == d->buckets.end()) return -1;
    std::vector<Registration*>& regs = found->second->registrations;
    const auto pos = std::lower_bound(regs.begin(), regs.end(), ctx, ctx_less);
    if (pos == regs.end() || (*pos)->ctx != ctx) return -1;  // not under this dest: it stays registered
    Registration* const record = *pos;  // the bucket's reference, now ours
    regs.erase(pos);
    d->live.fetch_sub(1, std::memory_order_relaxed);
    if (regs.empty()) {
      emptied = std::move(found->second);
      d->buckets.erase(found);
    }
    record->cancelled = true;  // no send enters the callback from here on
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
  // under us) and then delivered one by one, with the lock dropped around each callback. `cursor` is the last ctx taken; ctxs rise with
  // registration order and are never reused, so "ctx > cursor" resumes exactly where the last chunk ended even if the
  // bucket changed meanwhile, and "ctx <= newest" leaves registrations made during this send for the next message.
  constexpr std::size_t kChunk = 16;
  Registration* chunk[kChunk];
  DispatcherCtx cursor = 0;
  int32_t delivered = 0;

  std::unique_lock<std::mutex> lock(d->mu);
  const DispatcherCtx newest = d->next_ctx - 1;
  for (;;) {
    const auto found = d->buckets.find(key);  // looked up again each chunk: a callback may have emptied it
    if (found == d->buckets.end()) break;
    const std::vector<Registration*>& regs = found->second->registrations;
    std::size_t n = 0;
    for (auto it = std::upper_bound(regs.begin(), regs.end(), cursor, ctx_greater);
         it != regs.end() && (*it)->ctx <= newest && n < kChunk; ++it) {
      ++(*it)->refs;  // this send's reference, dropped once it is done with the record
      chunk[n++] = *it;
    }
    if (n == 0) break;
    cursor = chunk[n - 1]->ctx;

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
  Buckets dropped;  // every bucket and dest copy; freed after the lock
  int32_t count = 0;
  {
    std::unique_lock<std::mutex> lock(d->mu);
    dropped.swap(d->buckets);  // the dispatcher is empty (and usable) from here on
    d->live.store(0, std::memory_order_relaxed);
    for (auto& entry : dropped) {
      for (Registration* r : entry.second->registrations) {
        r->cancelled = true;
        ++count;
      }
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
  return count;  // the dispatcher is done with every FFIWrapper it had
}

uint32_t dispatcher_live(const Dispatcher* d) noexcept {
  return d == nullptr ? 0 : d->live.load(std::memory_order_relaxed);
}
