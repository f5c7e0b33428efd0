//! Seed 000's program: boxed `OnSend` handlers registered with the C++ dispatcher through `handler_`, messages sent,
//! registrations cancelled with `cancel_` (which gives every box back), then `shutdown`. Checked with valgrind:
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

use napi_ownership_dispatch::{Dispatcher, OnSend, UserSpaceWrapper, cancel_, handler_};

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

fn printer(name: &str) -> Box<dyn OnSend> {
    Box::new(Printer { name: name.to_owned() })
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // A failed assertion must not unwind into the C runtime: report it (the panic hook printed it) as exit code 1.
    let code = if catch_unwind(run).is_ok() { 0 } else { 1 };
    std::process::exit(code)
}

fn run() {
    let dispatcher: Dispatcher = Dispatcher::new().expect("dispatcher_new");

    println!("handler_: three boxed handlers");
    let register = |dest: &str, name: &str| -> UserSpaceWrapper {
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
    cancel_(&dispatcher, "orders", dave).expect("cancelled");
    drop(dispatcher);

    let (received, dropped) = (RECEIVED.load(Ordering::Relaxed), DROPPED.load(Ordering::Relaxed));
    assert_eq!((received, dropped), (7, 4));
    println!(
        "done: {received} messages delivered, {dropped} handlers registered and dropped, each exactly once"
    );
}
