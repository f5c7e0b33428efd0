//! handler_ / cancel_ / send / shutdown over the C++ core, with handlers that count their drops: every box is
//! dropped exactly once, and never while the dispatcher still borrows it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// What the handlers of one test saw, in order, and how many of them were dropped.
#[derive(Default)]
struct Log {
    events: RefCell<Vec<String>>,
    drops: Cell<usize>,
}

impl Log {
    fn push(&self, event: String) {
        self.events.borrow_mut().push(event);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.events.borrow_mut())
    }
}

/// Logs `name:dest:msg`, runs an optional action, logs its own drop.
struct Recorder {
    name: &'static str,
    log: Rc<Log>,
    action: Option<Box<dyn Fn()>>,
}

impl OnSend for Recorder {
    fn on_send(&self, dest: &str, msg: &str) {
        self.log.push(format!("{}:{dest}:{msg}", self.name));
        if let Some(action) = &self.action {
            action();
        }
        // Still readable after an action that cancelled this very registration.
        self.log.push(format!("{}:returns", self.name));
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.log.drops.set(self.log.drops.get() + 1);
        self.log.push(format!("{}:dropped", self.name));
    }
}

fn recorder(name: &'static str, log: &Rc<Log>) -> Box<dyn OnSend> {
    Box::new(Recorder { name, log: Rc::clone(log), action: None })
}

fn recorder_with(name: &'static str, log: &Rc<Log>, action: impl Fn() + 'static) -> Box<dyn OnSend> {
    Box::new(Recorder { name, log: Rc::clone(log), action: Some(Box::new(action)) })
}

fn dispatcher() -> Rc<Dispatcher> {
    Rc::new(Dispatcher::new().expect("dispatcher_new"))
}

fn register(d: &Dispatcher, dest: &str, handle: Box<dyn OnSend>) -> UserSpaceWrapper {
    handler_(d, dest, handle).expect("registered")
}

#[test]
fn delivers_in_registration_order_and_counts() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let a = register(&d, "orders", recorder("a", &log));
    let b = register(&d, "orders", recorder("b", &log));
    let c = register(&d, "refunds", recorder("c", &log));
    assert_eq!(d.live(), 3);
    assert_ne!(a.ctx(), b.ctx());
    assert_eq!(a.dest(), c"orders");
    assert_eq!(d.send("orders", "hello"), Ok(2));
    assert_eq!(d.send("refunds", "back"), Ok(1));
    assert_eq!(d.send("nobody", "x"), Ok(0));
    assert_eq!(d.send_cstr(c"orders", c"Grüße 👋"), 2);
    assert_eq!(
        log.take(),
        [
            "a:orders:hello",
            "a:returns",
            "b:orders:hello",
            "b:returns",
            "c:refunds:back",
            "c:returns",
            "a:orders:Grüße 👋",
            "a:returns",
            "b:orders:Grüße 👋",
            "b:returns"
        ]
    );
    for w in [a, b, c] {
        let dest = w.dest().to_str().unwrap().to_owned();
        cancel_(&d, &dest, w).expect("cancelled");
    }
    assert_eq!(log.drops.get(), 3);
    assert_eq!(d.live(), 0);
}

#[test]
fn cancel_frees_all_three_boxes_once_and_stops_delivery() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let w = register(&d, "c", recorder("h", &log));
    assert_eq!(cancel_(&d, "c", w).map_err(|_| "refused"), Ok(()));
    assert_eq!(log.drops.get(), 1, "dropped by cancel_, before it returned");
    assert_eq!(d.send("c", "x"), Ok(0));
    assert_eq!(log.take(), ["h:dropped"]);
}

#[test]
fn wrong_dest_cancel_keeps_it_registered_and_hands_the_wrapper_back() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let w = register(&d, "right", recorder("h", &log));
    let ctx = w.ctx();
    let w = cancel_(&d, "wrong", w).expect_err("the wrong dest must not cancel");
    assert_eq!((w.ctx(), log.drops.get(), d.live()), (ctx, 0, 1), "nothing freed, still registered");
    assert_eq!(d.send("right", "still here"), Ok(1));
    // A NUL in dest can name no registration either.
    let w = cancel_(&d, "ri\0ght", w).expect_err("NUL");
    assert_eq!(d.send("right", "again"), Ok(1));
    cancel_(&d, "right", w).expect("the right dest cancels");
    assert_eq!(log.drops.get(), 1);
    assert_eq!(d.send("right", "gone"), Ok(0));
}

#[test]
fn a_wrapper_of_another_dispatcher_is_refused() {
    let (d1, d2, log) = (dispatcher(), dispatcher(), Rc::new(Log::default()));
    // Both dispatchers issue ctx 1 first: cancelling d1's wrapper on d2 would cancel d2's registration and free
    // boxes d1 still borrows. The wrapper remembers its dispatcher, so it is refused.
    let mine = register(&d1, "x", recorder("d1", &log));
    let theirs = register(&d2, "x", recorder("d2", &log));
    assert_eq!(mine.ctx(), theirs.ctx());
    let mine = cancel_(&d2, "x", mine).expect_err("foreign wrapper");
    assert_eq!((d1.live(), d2.live(), log.drops.get()), (1, 1, 0));
    drop((mine, theirs));
    assert_eq!((d1.live(), d2.live(), log.drops.get()), (0, 0, 2));
}

#[test]
fn dropping_the_wrapper_cancels_and_frees() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let w = register(&d, "scoped", recorder("h", &log));
    drop(w);
    assert_eq!((d.live(), log.drops.get()), (0, 1));
    assert_eq!(d.send("scoped", "x"), Ok(0));
}

#[test]
fn shutdown_drops_registrations_and_the_wrappers_still_free_their_boxes() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let a = register(&d, "s1", recorder("a", &log));
    let b = register(&d, "s2", recorder("b", &log));
    assert_eq!(d.shutdown(), 2);
    assert_eq!((d.live(), log.drops.get()), (0, 0), "the wrappers still own the boxes");
    assert_eq!(d.send("s1", "x"), Ok(0));
    // Not registered any more: cancel_ reports it (Err) and frees nothing; dropping the wrapper frees.
    let a = cancel_(&d, "s1", a).expect_err("shut down");
    drop(a);
    drop(b);
    assert_eq!(log.drops.get(), 2);
    // Usable again.
    let c = register(&d, "s1", recorder("c", &log));
    assert_eq!(d.send("s1", "again"), Ok(1));
    assert!(cancel_(&d, "s1", c).is_ok());
    assert_eq!(log.drops.get(), 3);
}

#[test]
fn the_dispatcher_lives_until_its_last_wrapper() {
    let log = Rc::new(Log::default());
    let d = Dispatcher::new().unwrap();
    let w = register(&d, "x", recorder("h", &log));
    drop(d);
    assert_eq!(log.drops.get(), 0);
    drop(w);
    assert_eq!(log.drops.get(), 1);
}

#[test]
fn handler_refuses_a_dest_with_nul_and_hands_the_handler_back() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let refused = handler_(&d, "ab\0c", recorder("h", &log)).expect_err("NUL");
    assert_eq!(refused.reason, RefusedReason::InteriorNul(InteriorNul { arg: "dest", offset: 2 }));
    assert_eq!(
        InteriorNul { arg: "dest", offset: 2 }.to_string(),
        "dest contains a NUL byte at offset 2; a NUL-terminated C string cannot carry it"
    );
    assert_eq!(log.drops.get(), 0);
    drop(refused);
    assert_eq!((d.live(), log.drops.get()), (0, 1));
    assert_eq!(d.send("a\0", "m"), Err(InteriorNul { arg: "dest", offset: 1 }));
    assert_eq!(d.send("a", "m\0"), Err(InteriorNul { arg: "message", offset: 1 }));
    let long = "x".repeat(1000);
    assert_eq!(d.send(&long, &long), Ok(0), "long strings go through a heap CString");
}

#[test]
fn a_callback_cancels_itself_and_its_boxes_are_freed_after_it_returns() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let slot: Rc<RefCell<Option<UserSpaceWrapper>>> = Rc::default();
    let (d2, slot2) = (Rc::clone(&d), Rc::clone(&slot));
    let w = register(
        &d,
        "re",
        recorder_with("self", &log, move || {
            let me = slot2.borrow_mut().take().expect("registered");
            cancel_(&d2, "re", me).expect("cancels itself");
        }),
    );
    *slot.borrow_mut() = Some(w);
    let _after = register(&d, "re", recorder("after", &log));
    assert_eq!(d.send("re", "1"), Ok(2));
    assert_eq!(d.send("re", "2"), Ok(1));
    assert_eq!(
        log.take(),
        [
            "self:re:1",
            "self:returns",
            "self:dropped",
            "after:re:1",
            "after:returns",
            "after:re:2",
            "after:returns"
        ],
        "freed right after its on_send returned, not inside it"
    );
    assert_eq!(log.drops.get(), 1);
}

#[test]
fn a_handler_cancelled_during_a_send_is_not_called_afterwards() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let victim: Rc<RefCell<Option<UserSpaceWrapper>>> = Rc::default();
    let (d2, victim2) = (Rc::clone(&d), Rc::clone(&victim));
    let _killer = register(
        &d,
        "kill",
        recorder_with("killer", &log, move || {
            if let Some(v) = victim2.borrow_mut().take() {
                cancel_(&d2, "kill", v).expect("cancelled");
            }
        }),
    );
    *victim.borrow_mut() = Some(register(&d, "kill", recorder("victim", &log)));
    assert_eq!(d.send("kill", "x"), Ok(1));
    assert_eq!(
        log.take(),
        ["killer:kill:x", "victim:dropped", "killer:returns"],
        "freed at once: not running"
    );
}

#[test]
fn a_handler_registered_during_a_send_gets_the_next_message() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let added: Rc<RefCell<Vec<UserSpaceWrapper>>> = Rc::default();
    let (d2, added2, log2) = (Rc::clone(&d), Rc::clone(&added), Rc::clone(&log));
    let _adder = register(
        &d,
        "grow",
        recorder_with("adder", &log, move || {
            if added2.borrow().is_empty() {
                added2.borrow_mut().push(register(&d2, "grow", recorder("added", &log2)));
            }
        }),
    );
    assert_eq!(d.send("grow", "1"), Ok(1));
    assert_eq!(d.send("grow", "2"), Ok(2));
    assert_eq!(
        log.take(),
        ["adder:grow:1", "adder:returns", "adder:grow:2", "adder:returns", "added:grow:2", "added:returns"]
    );
}

#[test]
fn nested_sends_and_a_shutdown_from_inside_a_callback() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let _inner = register(&d, "inner", recorder("inner", &log));
    let d2 = Rc::clone(&d);
    let _outer = register(
        &d,
        "outer",
        recorder_with("outer", &log, move || assert_eq!(d2.send("inner", "nested"), Ok(1))),
    );
    assert_eq!(d.send("outer", "o"), Ok(1));
    assert_eq!(log.take(), ["outer:outer:o", "inner:inner:nested", "inner:returns", "outer:returns"]);

    // A shutdown inside a callback: the later handler of the same send is not called.
    let d3 = Rc::clone(&d);
    let first = register(&d, "down", recorder_with("first", &log, move || assert_eq!(d3.shutdown(), 4)));
    let second = register(&d, "down", recorder("second", &log));
    assert_eq!(d.send("down", "x"), Ok(1));
    assert_eq!(log.take(), ["first:down:x", "first:returns"]);
    drop((first, second));
    assert_eq!(log.drops.get(), 2);
}

#[test]
fn a_shutdown_inside_a_callback_then_dropping_its_own_wrapper_there_defers_the_free() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let slot: Rc<RefCell<Option<UserSpaceWrapper>>> = Rc::default();
    let (d2, slot2) = (Rc::clone(&d), Rc::clone(&slot));
    *slot.borrow_mut() = Some(register(
        &d,
        "x",
        recorder_with("h", &log, move || {
            d2.shutdown();
            // Not registered any more (-1 under its own dest) but still running: the free waits for on_send.
            drop(slot2.borrow_mut().take());
        }),
    ));
    assert_eq!(d.send("x", "m"), Ok(1));
    assert_eq!(log.take(), ["h:x:m", "h:returns", "h:dropped"]);
}

#[test]
fn a_recursive_handler_cancelled_at_the_deepest_level_is_freed_by_the_outermost_call() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let slot: Rc<RefCell<Option<UserSpaceWrapper>>> = Rc::default();
    let depth = Rc::new(Cell::new(0));
    let (d2, slot2, depth2) = (Rc::clone(&d), Rc::clone(&slot), Rc::clone(&depth));
    *slot.borrow_mut() = Some(register(
        &d,
        "rec",
        recorder_with("h", &log, move || {
            depth2.set(depth2.get() + 1);
            if depth2.get() < 3 {
                assert_eq!(d2.send("rec", "deeper"), Ok(1));
            } else {
                let me = slot2.borrow_mut().take().unwrap();
                cancel_(&d2, "rec", me).expect("cancelled three calls deep");
            }
        }),
    ));
    assert_eq!(d.send("rec", "top"), Ok(1));
    assert_eq!(
        log.take(),
        ["h:rec:top", "h:rec:deeper", "h:rec:deeper", "h:returns", "h:returns", "h:returns", "h:dropped"],
        "freed once, after the outermost call returned"
    );
    assert_eq!(d.send("rec", "gone"), Ok(0));
}

struct Panicker;

impl OnSend for Panicker {
    fn on_send(&self, _dest: &str, msg: &str) {
        panic!("handler panicked on {msg}");
    }
}

#[test]
fn a_panicking_handler_does_not_stop_delivery_and_send_resumes_the_first_panic() {
    let (d, log) = (dispatcher(), Rc::new(Log::default()));
    let a = register(&d, "p", recorder("a", &log));
    let p1 = register(&d, "p", Box::new(Panicker));
    let p2 = register(&d, "p", Box::new(Panicker));
    let b = register(&d, "p", recorder("b", &log));
    let caught = catch_unwind(AssertUnwindSafe(|| d.send("p", "one"))).expect_err("resumed");
    assert_eq!(caught.downcast_ref::<String>().map(String::as_str), Some("handler panicked on one"));
    assert_eq!(log.take(), ["a:p:one", "a:returns", "b:p:one", "b:returns"]);
    assert_eq!(d.live(), 4, "still registered");
    // The panic was consumed: the next send without a panicking handler is clean.
    drop((p1, p2));
    assert_eq!(d.send("p", "two"), Ok(2));
    drop((a, b));
    assert_eq!(log.drops.get(), 2);
}

/// A thread-safe handler: counts messages and its own drop.
struct Counting {
    received: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
}

impl OnSend for Counting {
    fn on_send(&self, _dest: &str, _msg: &str) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
#[cfg_attr(miri, ignore = "the Miri model does not make cancel wait for other threads")]
fn send_sync_handlers_across_threads_are_each_dropped_once() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Dispatcher<dyn OnSend + Send + Sync>>();
    fn assert_send<T: Send>() {}
    assert_send::<UserSpaceWrapper<dyn OnSend + Send + Sync>>();

    let d: Arc<Dispatcher<dyn OnSend + Send + Sync>> = Arc::new(Dispatcher::new().unwrap());
    let (received, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (d, stop) = (Arc::clone(&d), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut sends = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    d.send("t", "m").unwrap();
                    sends += 1;
                }
                sends
            })
        })
        .collect();
    const ROUNDS: usize = 2000;
    for i in 0..ROUNDS {
        let handle = Box::new(Counting { received: Arc::clone(&received), drops: Arc::clone(&drops) });
        let w = handler_(&d, "t", handle).unwrap();
        if i % 2 == 0 {
            assert!(cancel_(&d, "t", w).is_ok());
        } else {
            // Cancel (by drop) on another thread: the wrapper is Send for Send handlers.
            std::thread::spawn(move || drop(w)).join().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sends: u32 = senders.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(drops.load(Ordering::Relaxed), ROUNDS, "every handler dropped exactly once");
    assert_eq!(d.live(), 0);
    assert!(sends > 0);
}
