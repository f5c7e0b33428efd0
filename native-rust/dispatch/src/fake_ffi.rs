//! A Rust model of dispatcher.h for Miri, which cannot run the C++ core. Same contract: delivery in registration
//! order to the registrations present when the send began and not cancelled when their turn comes; the lock is never
//! held across a callback; ctx never reused; cancel under the wrong dest fails and keeps the registration. Posts go
//! to a worker thread (started by the first post, joined by shutdown) that delivers them in order and then calls
//! `on_delivered`; a shutdown discards what is queued with `on_delivered(ctx, -1)`. Producers are threads that post.
//! Modelled coarsely: a cancel or shutdown on another thread waits for the worker to finish the whole message it is
//! delivering (the core waits only for the one callback). Not modelled: cancel waiting for callbacks of synchronous
//! sends running on *other* threads (Miri runs the tests that post, not the multi-threaded send test).

use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use super::{DispatcherCtx, DispatcherDelivered, DispatcherProducerFinished, FFIWrapper};

struct Registration {
    ctx: DispatcherCtx,
    dest: CString,
    wrapper: *mut FFIWrapper,
    cancelled: AtomicBool,
}

struct Post {
    dest: CString,
    msg: CString,
    on_delivered: Option<DispatcherDelivered>,
    ctx: *mut c_void,
}

// SAFETY (model): `ctx` is opaque here, handed back to `on_delivered` on whichever thread tells it, as the header says.
unsafe impl Send for Post {}

#[derive(Default)]
struct State {
    registrations: Vec<Arc<Registration>>,
    next_ctx: DispatcherCtx,
    queue: VecDeque<Post>,
    worker: Option<JoinHandle<()>>,
    worker_id: Option<ThreadId>,
    stopping: bool,
}

pub struct Dispatcher {
    state: Mutex<State>,
    work: Condvar,
    /// Held by the worker while it delivers one message: a cancel or shutdown on another thread takes it once after
    /// dropping the registration, so it returns only when the worker has left the callbacks.
    delivering: Mutex<()>,
    queued: AtomicU32,
}

/// A dispatcher pointer for the worker thread.
struct SendPtr<T>(*mut T);
// SAFETY (model): the model's dispatcher and producers are used from any thread through their mutexes and atomics.
unsafe impl<T> Send for SendPtr<T> {}

pub fn dispatcher_new() -> *mut Dispatcher {
    Box::into_raw(Box::new(Dispatcher {
        state: Mutex::new(State { next_ctx: 1, ..State::default() }),
        work: Condvar::new(),
        delivering: Mutex::new(()),
        queued: AtomicU32::new(0),
    }))
}

fn on_worker(state: &State) -> bool {
    state.worker_id == Some(std::thread::current().id())
}

/// After a registration was dropped: wait for the worker to leave its callbacks, unless this is the worker.
fn wait_for_worker(d: &Dispatcher, on_worker: bool) {
    if !on_worker {
        drop(d.delivering.lock().unwrap());
    }
}

fn worker_main(d: SendPtr<Dispatcher>) {
    let d = d.0;
    // SAFETY (model): the dispatcher outlives its worker: shutdown (also from dispatcher_free) joins it.
    let dispatcher = unsafe { &*d };
    loop {
        let post = {
            let mut state = dispatcher.state.lock().unwrap();
            while !state.stopping && state.queue.is_empty() {
                state = dispatcher.work.wait(state).unwrap();
            }
            if state.stopping {
                return;
            }
            state.queue.pop_front().unwrap()
        };
        let delivered = {
            let _delivering = dispatcher.delivering.lock().unwrap();
            // SAFETY (model): the post's own copies, alive for the call.
            unsafe { dispatcher_send(d, post.dest.as_ptr(), post.msg.as_ptr()) }
        };
        dispatcher.queued.fetch_sub(1, Ordering::Relaxed);
        if let Some(on_delivered) = post.on_delivered {
            // SAFETY (model): the poster's callback with its own ctx, once.
            unsafe { on_delivered(post.ctx, delivered) };
        }
    }
}

/// # Safety
/// As `dispatcher_free` in dispatcher.h.
pub unsafe fn dispatcher_free(d: *mut Dispatcher) {
    if !d.is_null() {
        // SAFETY: `d` came from dispatcher_new and is freed once.
        unsafe {
            dispatcher_shutdown(d);
            drop(Box::from_raw(d));
        }
    }
}

/// # Safety
/// As `dispatcher_handler` in dispatcher.h.
pub unsafe fn dispatcher_handler(
    d: *mut Dispatcher,
    dest: *const c_char,
    w: *mut FFIWrapper,
) -> DispatcherCtx {
    // SAFETY: per dispatcher.h the arguments are valid.
    let (d, dest) = unsafe { (&*d, CStr::from_ptr(dest).to_owned()) };
    let mut state = d.state.lock().unwrap();
    let ctx = state.next_ctx;
    state.next_ctx += 1;
    state.registrations.push(Arc::new(Registration {
        ctx,
        dest,
        wrapper: w,
        cancelled: AtomicBool::new(false),
    }));
    ctx
}

/// # Safety
/// As `dispatcher_cancel` in dispatcher.h.
pub unsafe fn dispatcher_cancel(d: *mut Dispatcher, dest: *const c_char, ctx: DispatcherCtx) -> i32 {
    // SAFETY: per dispatcher.h the arguments are valid.
    let (d, dest) = unsafe { (&*d, CStr::from_ptr(dest)) };
    let mut state = d.state.lock().unwrap();
    match state.registrations.iter().position(|r| r.ctx == ctx && r.dest.as_c_str() == dest) {
        Some(index) => {
            state.registrations.remove(index).cancelled.store(true, Ordering::Relaxed);
            let on_worker = on_worker(&state);
            drop(state);
            wait_for_worker(d, on_worker);
            0
        }
        None => -1,
    }
}

/// # Safety
/// As `dispatcher_send` in dispatcher.h.
pub unsafe fn dispatcher_send(d: *mut Dispatcher, dest: *const c_char, msg: *const c_char) -> i32 {
    // SAFETY: per dispatcher.h the arguments are valid.
    let (d, key) = unsafe { (&*d, CStr::from_ptr(dest)) };
    let snapshot: Vec<Arc<Registration>> = {
        let state = d.state.lock().unwrap();
        state.registrations.iter().filter(|r| r.dest.as_c_str() == key).cloned().collect()
    };
    let mut delivered = 0;
    for registration in snapshot {
        let call = {
            let _state = d.state.lock().unwrap();
            if registration.cancelled.load(Ordering::Relaxed) {
                None
            } else {
                // SAFETY: not cancelled, so the caller's FFIWrapper is still lent to us.
                let w = unsafe { &*registration.wrapper };
                Some((w.callback, w.self_rust_side))
            }
        };
        if let Some((callback, self_rust_side)) = call {
            // SAFETY: the registration's own callback with its own `self`, and the send's strings.
            unsafe { callback(self_rust_side, dest, msg) };
            delivered += 1;
        }
    }
    delivered
}

/// # Safety
/// As `dispatcher_shutdown` in dispatcher.h.
pub unsafe fn dispatcher_shutdown(d: *mut Dispatcher) -> i32 {
    // SAFETY: per dispatcher.h `d` is valid.
    let d = unsafe { &*d };
    let mut state = d.state.lock().unwrap();
    let on_worker = on_worker(&state);
    let to_join = if !on_worker && !state.stopping { state.worker.take() } else { None };
    if to_join.is_some() {
        state.stopping = true;
        d.work.notify_all();
    }
    let mut discarded = std::mem::take(&mut state.queue);
    let dropped = std::mem::take(&mut state.registrations);
    for registration in &dropped {
        registration.cancelled.store(true, Ordering::Relaxed);
    }
    drop(state);
    if let Some(worker) = to_join {
        worker.join().unwrap();
        let mut state = d.state.lock().unwrap();
        discarded.extend(state.queue.drain(..));
        state.worker_id = None;
        state.stopping = false;
    } else {
        wait_for_worker(d, on_worker);
    }
    d.queued.fetch_sub(discarded.len() as u32, Ordering::Relaxed);
    for post in discarded {
        if let Some(on_delivered) = post.on_delivered {
            // SAFETY (model): the poster's callback with its own ctx, once.
            unsafe { on_delivered(post.ctx, -1) };
        }
    }
    dropped.len() as i32
}

/// # Safety
/// As `dispatcher_live` in dispatcher.h.
pub unsafe fn dispatcher_live(d: *const Dispatcher) -> u32 {
    // SAFETY: per dispatcher.h `d` is valid.
    unsafe { &*d }.state.lock().unwrap().registrations.len() as u32
}

/// # Safety
/// As `dispatcher_post` in dispatcher.h.
pub unsafe fn dispatcher_post(
    d: *mut Dispatcher,
    dest: *const c_char,
    msg: *const c_char,
    on_delivered: Option<DispatcherDelivered>,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: per dispatcher.h the arguments are valid.
    let (dispatcher, dest, msg) =
        unsafe { (&*d, CStr::from_ptr(dest).to_owned(), CStr::from_ptr(msg).to_owned()) };
    let mut state = dispatcher.state.lock().unwrap();
    state.queue.push_back(Post { dest, msg, on_delivered, ctx });
    if !state.stopping && state.worker.is_none() {
        let worker = SendPtr(d);
        let handle = std::thread::spawn(move || worker_main(worker));
        state.worker_id = Some(handle.thread().id());
        state.worker = Some(handle);
    }
    dispatcher.queued.fetch_add(1, Ordering::Relaxed);
    dispatcher.work.notify_one();
    0
}

/// # Safety
/// As `dispatcher_queued` in dispatcher.h.
pub unsafe fn dispatcher_queued(d: *const Dispatcher) -> u32 {
    // SAFETY: per dispatcher.h `d` is valid.
    unsafe { &*d }.queued.load(Ordering::Relaxed)
}

pub struct DispatcherProducer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    asked: AtomicBool,
    thread: Mutex<Option<JoinHandle<bool>>>,
    interrupted: AtomicBool,
}

/// # Safety
/// As `producer_start` in dispatcher.h.
#[allow(clippy::too_many_arguments)]
pub unsafe fn producer_start(
    d: *mut Dispatcher,
    dest: *const c_char,
    count: u32,
    interval_ms: u32,
    on_delivered: Option<DispatcherDelivered>,
    ctx: *mut c_void,
    on_finished: Option<DispatcherProducerFinished>,
    finished_ctx: *mut c_void,
) -> *mut DispatcherProducer {
    // SAFETY: per dispatcher.h `dest` is a C string.
    let dest = unsafe { CStr::from_ptr(dest) }.to_owned();
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let (d, ctx, finished_ctx) = (SendPtr(d), SendPtr(ctx), SendPtr(finished_ctx));
    let stop2 = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let (d, ctx, finished_ctx) = (d, ctx, finished_ctx);
        let mut posted = 0;
        let mut interrupted = false;
        for i in 0..count {
            let mut stopped = stop2.0.lock().unwrap();
            if i != 0 && interval_ms != 0 && !*stopped {
                let wait = Duration::from_millis(u64::from(interval_ms));
                stopped = stop2.1.wait_timeout_while(stopped, wait, |s| !*s).unwrap().0;
            }
            if *stopped {
                interrupted = true;
                break;
            }
            drop(stopped);
            let text = CString::new(i.to_string()).unwrap();
            // SAFETY (model): the dispatcher outlives the producer (the header's rule).
            if unsafe { dispatcher_post(d.0, dest.as_ptr(), text.as_ptr(), on_delivered, ctx.0) } != 0 {
                break;
            }
            posted += 1;
        }
        if let Some(on_finished) = on_finished {
            // SAFETY (model): the caller's callback with its own ctx, once.
            unsafe { on_finished(finished_ctx.0, posted) };
        }
        interrupted
    });
    Box::into_raw(Box::new(DispatcherProducer {
        stop,
        asked: AtomicBool::new(false),
        thread: Mutex::new(Some(thread)),
        interrupted: AtomicBool::new(false),
    }))
}

/// # Safety
/// As `producer_stop` in dispatcher.h.
pub unsafe fn producer_stop(p: *mut DispatcherProducer) -> i32 {
    // SAFETY: per dispatcher.h `p` is valid.
    let p = unsafe { &*p };
    let first = {
        let mut stopped = p.stop.0.lock().unwrap();
        *stopped = true;
        p.stop.1.notify_all();
        !p.asked.swap(true, Ordering::Relaxed)
    };
    if let Some(thread) = p.thread.lock().unwrap().take() {
        p.interrupted.store(thread.join().unwrap(), Ordering::Relaxed);
    }
    i32::from(first && p.interrupted.load(Ordering::Relaxed))
}

/// # Safety
/// As `producer_free` in dispatcher.h.
pub unsafe fn producer_free(p: *mut DispatcherProducer) {
    if !p.is_null() {
        // SAFETY: `p` came from producer_start and is freed once.
        unsafe {
            producer_stop(p);
            drop(Box::from_raw(p));
        }
    }
}
