//! Seed 000's program: boxed `OnSend` handlers registered with the C++ dispatcher through `handler_`, messages sent,
//! registrations cancelled with `cancel_` (which gives every box back), then `shutdown`; finally messages posted to the
//! dispatcher's own worker thread and a native producer, as a real C library calls back from its threads (each boxed
//! `on_delivered` closure taken back and dropped exactly once). Checked with valgrind:
//!
//! ```sh
//! cargo build --manifest-path native-rust/Cargo.toml -p napi-ownership-dispatch --example seed000
//! valgrind --leak-check=full --error-exitcode=1 native-rust/target/debug/examples/seed000
//! ```
//! "All heap blocks were freed -- no leaks are possible".
//!
//! `no_main`: Rust's own start-up (`std::rt::lang_start`, which runs before a Rust `main`) allocates a bookkeeping map
//! for its stack-overflow handler and never frees it: 544 bytes "still reachable" at exit, which are not ours but
//! would hide the result this program exists to show. So the C runtime calls `main` below directly, and the program
//! leaves through `std::process::exit`, which still runs std's clean-up (flushes stdout and frees its buffer).
#![no_main]

use std::ffi::{c_char, c_int};
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use napi_ownership_dispatch::{Delivered, Dispatcher, OnSend, Producer, UserSpaceWrapper, cancel_, handler_};

/// Handlers that the dispatcher's worker thread may call: `post` needs them `Sync`.
type Handler = dyn OnSend + Send + Sync;

static RECEIVED: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// A handler with some heap of its own, so a leak would show.
struct Printer {
    name: String,
}

impl OnSend for Printer {
    fn on_send(&self, dest: &str, msg: &str) {
        RECEIVED.fetch_add(1, Ordering::Relaxed);
        println!("  [{}] got {msg:?} on {dest:?}", self.name);
    }
}

impl Drop for Printer {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        println!("  [{}] dropped (its three boxes are freed)", self.name);
    }
}

fn printer(name: &str) -> Box<Handler> {
    Box::new(Printer { name: name.to_owned() })
}

/// What the worker and producer threads tell the main thread. (Not an mpsc channel: a blocking `recv` makes std keep
/// a handle of the main thread that a `no_main` program never frees.)
struct Mailbox<T>(Mutex<Vec<T>>, Condvar);

impl<T> Mailbox<T> {
    fn new() -> Arc<Self> {
        Arc::new(Mailbox(Mutex::new(Vec::new()), Condvar::new()))
    }

    fn send(&self, value: T) {
        self.0.lock().unwrap().push(value);
        self.1.notify_all();
    }

    /// Waits for `n` values and takes them, in arrival order.
    fn take(&self, n: usize) -> Vec<T> {
        let mut values = self.1.wait_while(self.0.lock().unwrap(), |v| v.len() < n).unwrap();
        values.drain(..).collect()
    }
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // A failed assertion must not unwind into the C runtime: report it (the panic hook printed it) as exit code 1.
    let code = if catch_unwind(run).is_ok() { 0 } else { 1 };
    std::process::exit(code)
}

fn run() {
    let dispatcher: Dispatcher<Handler> = Dispatcher::new().expect("dispatcher_new");

    println!("handler_: three boxed handlers");
    let register = |dest: &str, name: &str| -> UserSpaceWrapper<Handler> {
        let wrapper = handler_(&dispatcher, dest, printer(name)).expect("registered");
        println!("  {name} registered under {dest:?} as ctx {}", wrapper.ctx());
        wrapper
    };
    let alice = register("orders", "alice");
    let bob = register("orders", "bob");
    let carol = register("refunds", "carol");
    assert_eq!(dispatcher.live(), 3);

    println!("send");
    assert_eq!(dispatcher.send("orders", "hello"), Ok(2));
    assert_eq!(dispatcher.send("refunds", "money back"), Ok(1));
    assert_eq!(RECEIVED.load(Ordering::Relaxed), 3);

    println!("cancel_ with the wrong dest: refused, bob stays registered and the wrapper comes back");
    let bob = match cancel_(&dispatcher, "refunds", bob) {
        Ok(()) => panic!("cancelled under the wrong dest"),
        Err(bob) => bob,
    };
    assert_eq!(DROPPED.load(Ordering::Relaxed), 0);
    assert_eq!(dispatcher.send("orders", "still there?"), Ok(2));

    println!("cancel_ with the right dest: all three boxes rebuilt and dropped");
    cancel_(&dispatcher, "orders", bob).expect("cancelled");
    assert_eq!(DROPPED.load(Ordering::Relaxed), 1);
    assert_eq!(dispatcher.send("orders", "bob is gone"), Ok(1));

    println!("shutdown: the dispatcher drops what it holds");
    assert_eq!(dispatcher.shutdown(), 2);
    assert_eq!(dispatcher.live(), 0);
    assert_eq!(dispatcher.send("orders", "anyone?"), Ok(0));
    println!("the wrappers still own their boxes; letting go of them frees them");
    drop(alice);
    drop(carol);
    assert_eq!(DROPPED.load(Ordering::Relaxed), 3);

    println!("usable again after shutdown");
    let dave = register("orders", "dave");
    assert_eq!(dispatcher.send("orders", "fresh start"), Ok(1));

    println!("post: queued for the dispatcher's worker thread, which calls the handlers there");
    let told = Mailbox::new();
    for msg in ["posted one", "posted two"] {
        let told = Arc::clone(&told);
        // The closure is boxed and lent to the dispatcher; its on_delivered takes it back and drops it, once.
        dispatcher.post("orders", msg, move |outcome| told.send(outcome)).expect("posted");
    }
    assert_eq!(told.take(2), [Delivered::Ran(1); 2]);

    println!("a producer: a thread of the core posting three messages through the worker");
    let finished = Mailbox::new();
    let (told2, finished2) = (Arc::clone(&told), Arc::clone(&finished));
    let producer = Producer::start(
        &dispatcher,
        "orders",
        3,
        0,
        move |outcome| told2.send(outcome),
        move |posted| finished2.send(posted),
    )
    .expect("started");
    assert_eq!(finished.take(1), [3]);
    assert_eq!(told.take(3), [Delivered::Ran(1); 3]);
    drop(producer); // its context box is freed by the last of its callbacks
    cancel_(&dispatcher, "orders", dave).expect("cancelled");
    drop(dispatcher); // joins the worker

    let (received, dropped) = (RECEIVED.load(Ordering::Relaxed), DROPPED.load(Ordering::Relaxed));
    assert_eq!((received, dropped), (12, 4));
    println!(
        "done: {received} messages delivered, {dropped} handlers registered and dropped, each exactly once"
    );
}
