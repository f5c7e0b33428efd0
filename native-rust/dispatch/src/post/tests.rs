//! post / Producer over the C++ core (Miri: over the model in fake_ffi.rs), with contexts that count their drops:
//! every posted closure and every producer context is freed exactly once — after delivery, after a discard by
//! shutdown or by freeing the dispatcher, after a refusal — and never while a callback can still use it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use super::*;
use crate::{UserSpaceWrapper, cancel_, handler_};

type SyncDispatcher = Dispatcher<dyn OnSend + Send + Sync>;

const WAIT: Duration = Duration::from_secs(20);

/// Counts the drops of its tokens: a closure that captured one is freed when its token is.
#[derive(Clone, Default)]
struct Drops(Arc<AtomicUsize>);

struct Token(Arc<AtomicUsize>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drops {
    fn token(&self) -> Token {
        Token(Arc::clone(&self.0))
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Records each message with the thread it arrived on.
struct Collect(Sender<(ThreadId, String)>);

impl OnSend for Collect {
    fn on_send(&self, _dest: &str, msg: &str) {
        let _ = self.0.send((thread::current().id(), msg.to_owned()));
    }
}

/// A handler that, on message "block", says so and waits until the gate opens.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<Option<bool>>, Condvar)>);

impl Gate {
    fn wait_entered(&self) {
        let (lock, cv) = &*self.0;
        let guard = cv.wait_timeout_while(lock.lock().unwrap(), WAIT, |s| s.is_none()).unwrap().0;
        assert!(guard.is_some(), "the worker never entered the handler");
    }

    fn open(&self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap() = Some(true);
        cv.notify_all();
    }

    /// Opens the gate from another thread after a while (the caller is about to block on the worker).
    fn open_later(&self) -> thread::JoinHandle<()> {
        let gate = self.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(30));
            gate.open();
        })
    }
}

impl OnSend for Gate {
    fn on_send(&self, _dest: &str, msg: &str) {
        if msg != "block" {
            return;
        }
        let (lock, cv) = &*self.0;
        let mut state = lock.lock().unwrap();
        if state.is_none() {
            *state = Some(false);
            cv.notify_all();
        }
        let _open = cv.wait_timeout_while(state, WAIT, |s| *s != Some(true)).unwrap();
    }
}

fn sync_dispatcher() -> Arc<SyncDispatcher> {
    Arc::new(Dispatcher::new().expect("dispatcher_new"))
}

fn register(
    d: &SyncDispatcher,
    dest: &str,
    handler: Box<dyn OnSend + Send + Sync>,
) -> UserSpaceWrapper<dyn OnSend + Send + Sync> {
    handler_(d, dest, handler).expect("registered")
}

/// Posts `msg`; its closure holds a token and reports (tag, outcome, thread) on `tx`.
fn post_told(
    d: &SyncDispatcher,
    dest: &str,
    msg: &str,
    tag: usize,
    drops: &Drops,
    tx: &Sender<(usize, Delivered, ThreadId)>,
) {
    let (token, tx) = (drops.token(), tx.clone());
    d.post(dest, msg, move |outcome| {
        let _token = token;
        tx.send((tag, outcome, thread::current().id())).unwrap();
    })
    .expect("posted");
}

fn told(rx: &Receiver<(usize, Delivered, ThreadId)>, n: usize) -> Vec<(usize, Delivered, ThreadId)> {
    (0..n).map(|_| rx.recv_timeout(WAIT).expect("on_delivered")).collect()
}

#[test]
fn post_delivers_on_the_worker_thread_then_tells_on_delivered_once() {
    let d = sync_dispatcher();
    let (seen_tx, seen) = mpsc::channel();
    let a = register(&d, "p", Box::new(Collect(seen_tx.clone())));
    let b = register(&d, "p", Box::new(Collect(seen_tx)));
    let (drops, (tx, rx)) = (Drops::default(), mpsc::channel());
    for i in 0..10 {
        post_told(&d, "p", &format!("m{i}"), i, &drops, &tx);
    }
    post_told(&d, "nobody", "x", 10, &drops, &tx);
    let outcomes = told(&rx, 11);
    let main = thread::current().id();
    let worker = outcomes[0].2;
    assert_ne!(worker, main, "on_delivered runs on the worker thread");
    let expected: Vec<_> =
        (0..11).map(|i| (i, if i < 10 { Delivered::Ran(2) } else { Delivered::Ran(0) }, worker)).collect();
    assert_eq!(outcomes, expected, "in order, each told once");
    let seen: Vec<_> = seen.try_iter().collect();
    assert_eq!(seen.len(), 20);
    assert!(seen.iter().all(|(thread, _)| *thread == worker), "handlers ran on the worker too");
    assert_eq!(seen[0].1, "m0");
    assert_eq!(seen[19].1, "m9");
    d.shutdown(); // joins the worker: every closure has been dropped
    assert_eq!(drops.count(), 11);
    assert_eq!(d.queued(), 0);
    drop((a, b));
}

#[test]
fn shutdown_discards_what_is_queued_and_tells_each_discarded_post_once_on_its_own_thread() {
    let d = sync_dispatcher();
    let gate = Gate::default();
    let w = register(&d, "g", Box::new(gate.clone()));
    let (drops, (tx, rx)) = (Drops::default(), mpsc::channel());
    post_told(&d, "g", "block", 0, &drops, &tx);
    gate.wait_entered();
    for i in 1..=5 {
        post_told(&d, "g", "queued", i, &drops, &tx);
    }
    assert_eq!(d.queued(), 6, "the one in hand and five waiting");
    let opener = gate.open_later();
    assert_eq!(d.shutdown(), 1); // joins the worker, which finishes "block" first
    opener.join().unwrap();
    let mut outcomes = told(&rx, 6);
    outcomes.sort_by_key(|o| o.0);
    assert_eq!(outcomes[0].1, Delivered::Ran(1));
    let main = thread::current().id();
    for (i, outcome, thread) in &outcomes[1..] {
        assert_eq!((*outcome, *thread), (Delivered::Discarded, main), "post {i}");
    }
    assert_eq!((drops.count(), d.queued()), (6, 0));
    drop(w);
    // Usable again: the next post starts a new worker.
    post_told(&d, "g", "after", 7, &drops, &tx);
    assert_eq!(told(&rx, 1)[0].1, Delivered::Ran(0));
    drop(d);
    assert_eq!(drops.count(), 7);
}

#[test]
fn freeing_the_dispatcher_discards_what_is_queued_and_cancel_waits_for_the_worker() {
    let d = sync_dispatcher();
    let gate = Gate::default();
    let w = register(&d, "g", Box::new(gate.clone()));
    let (drops, (tx, rx)) = (Drops::default(), mpsc::channel());
    post_told(&d, "g", "block", 0, &drops, &tx);
    gate.wait_entered();
    for i in 1..=3 {
        post_told(&d, "g", "queued", i, &drops, &tx);
    }
    let opener = gate.open_later();
    // The worker is inside the gate's callback: cancel returns only once it left (the boxes are freed after).
    assert!(cancel_(&d, "g", w).is_ok());
    opener.join().unwrap();
    drop(d); // dispatcher_free: joins the worker, then discards the rest
    let mut outcomes = told(&rx, 4);
    outcomes.sort_by_key(|o| o.0);
    let kinds: Vec<_> = outcomes.iter().map(|o| o.1).collect();
    assert_eq!(kinds[0], Delivered::Ran(1));
    assert!(kinds[1..].iter().all(|k| matches!(k, Delivered::Discarded | Delivered::Ran(0))), "{kinds:?}");
    assert_eq!(drops.count(), 4);
}

#[test]
fn a_refused_post_hands_the_closure_back_uncalled() {
    let d = sync_dispatcher();
    let (drops, called) = (Drops::default(), Arc::new(AtomicUsize::new(0)));
    let make = || {
        let (token, called) = (drops.token(), Arc::clone(&called));
        move |_| {
            let _token = token;
            called.fetch_add(1, Ordering::SeqCst);
        }
    };
    let refused = d.post("a\0b", "m", make()).expect_err("NUL in dest");
    assert_eq!(refused.reason, PostError::InteriorNul(InteriorNul { arg: "dest", offset: 1 }));
    drop(refused);
    let refused = d.post("a", "mm\0", make()).expect_err("NUL in message");
    assert_eq!(refused.reason, PostError::InteriorNul(InteriorNul { arg: "message", offset: 2 }));
    (refused.on_delivered)(Delivered::Ran(0)); // it is the caller's again
    assert_eq!((called.load(Ordering::SeqCst), drops.count(), d.queued()), (1, 2, 0));
}

#[test]
fn a_panicking_on_delivered_is_contained_and_its_closure_still_freed() {
    let d = sync_dispatcher();
    let (drops, (tx, rx)) = (Drops::default(), mpsc::channel());
    let token = drops.token();
    d.post("x", "m", move |_| {
        let _token = token;
        panic!("on_delivered panicked");
    })
    .unwrap();
    post_told(&d, "x", "after", 1, &drops, &tx);
    assert_eq!(told(&rx, 1)[0].1, Delivered::Ran(0), "the worker carried on");
    d.shutdown();
    assert_eq!(drops.count(), 2);
}

#[test]
#[cfg_attr(miri, ignore = "frees the dispatcher on a detached thread, which Miri reports as leaked")]
fn a_closure_holding_the_last_owner_frees_the_dispatcher_off_the_worker() {
    let d = sync_dispatcher();
    let (drops, (tx, rx)) = (Drops::default(), mpsc::channel());
    let last = Arc::clone(&d);
    d.post("x", "first", move |_| drop(last)).unwrap();
    post_told(&d, "x", "second", 1, &drops, &tx);
    drop(d);
    // The first closure dropped the last owner on the worker thread: a thread of its own freed the dispatcher,
    // joining the worker; the second post was delivered or discarded, and told once either way.
    let outcome = told(&rx, 1)[0].1;
    assert!(matches!(outcome, Delivered::Ran(0) | Delivered::Discarded), "{outcome:?}");
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    let deadline = std::time::Instant::now() + WAIT;
    while drops.count() != 1 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(drops.count(), 1);
}

/// Starts a producer whose callbacks report on channels and hold tokens.
fn produce(
    d: &SyncDispatcher,
    dest: &str,
    count: u32,
    interval_ms: u32,
    drops: &Drops,
) -> (Producer, Receiver<Delivered>, Receiver<(u32, ThreadId)>) {
    let (delivered_tx, delivered) = mpsc::channel();
    let (finished_tx, finished) = mpsc::channel();
    let (token_d, token_f) = (drops.token(), drops.token());
    let delivered_tx = Mutex::new(delivered_tx);
    let producer = Producer::start(
        d,
        dest,
        count,
        interval_ms,
        move |outcome| {
            let _ = &token_d;
            delivered_tx.lock().unwrap().send(outcome).unwrap();
        },
        move |posted| {
            let _token = token_f;
            finished_tx.send((posted, thread::current().id())).unwrap();
        },
    )
    .expect("started");
    (producer, delivered, finished)
}

#[test]
fn a_producer_posts_count_messages_then_finishes_and_its_context_is_freed_by_the_last_callback() {
    let d = sync_dispatcher();
    let (seen_tx, seen) = mpsc::channel();
    let w = register(&d, "prod", Box::new(Collect(seen_tx)));
    let drops = Drops::default();
    let count = if cfg!(miri) { 20 } else { 2000 };
    let (producer, delivered, finished) = produce(&d, "prod", count, 0, &drops);
    let (posted, thread) = finished.recv_timeout(WAIT).unwrap();
    assert_eq!(posted, count);
    assert_ne!(thread, thread::current().id(), "on_finished runs on the producer's thread");
    let outcomes: Vec<_> = (0..count).map(|_| delivered.recv_timeout(WAIT).unwrap()).collect();
    assert!(outcomes.iter().all(|o| *o == Delivered::Ran(1)));
    let texts: Vec<_> = seen.iter().take(count as usize).map(|(_, m)| m).collect();
    assert_eq!(texts, (0..count).map(|i| i.to_string()).collect::<Vec<_>>(), "in order: \"0\", \"1\", ...");
    assert!(producer.is_finished());
    assert_eq!(producer.posted(), Some(count));
    assert!(!producer.stop(), "already finished: not stopped early");
    d.shutdown(); // the worker joined: the last on_delivered has returned
    assert_eq!(drops.count(), 2, "both closures (one context box) dropped once");
    drop(producer);
    drop(w);
}

#[test]
fn stop_ends_a_producer_early_and_its_posts_are_still_told() {
    let d = sync_dispatcher();
    let drops = Drops::default();
    let (producer, delivered, finished) = produce(&d, "slow", 1_000_000, 20, &drops);
    assert!(!producer.is_finished() || cfg!(miri));
    assert!(producer.stop(), "stopped early");
    assert!(!producer.stop(), "idempotent");
    let (posted, _) = finished.try_recv().expect("on_finished ran before stop returned");
    assert!(posted < 1_000_000);
    for _ in 0..posted {
        delivered.recv_timeout(WAIT).unwrap();
    }
    drop(producer);
    drop(d);
    assert_eq!(drops.count(), 2);
}

#[test]
fn a_producer_dropped_with_posts_still_queued_leaves_its_context_to_them() {
    let d = sync_dispatcher();
    let gate = Gate::default();
    let w = register(&d, "g", Box::new(gate.clone()));
    let drops = Drops::default();
    let (tx, rx) = mpsc::channel();
    post_told(&d, "g", "block", 0, &drops, &tx);
    gate.wait_entered();
    let (producer, delivered, finished) = produce(&d, "g", 5, 0, &drops);
    let (posted, _) = finished.recv_timeout(WAIT).unwrap();
    assert_eq!(posted, 5);
    drop(producer); // the C producer is freed; its five messages wait behind "block"
    assert_eq!(
        drops.count(),
        1,
        "on_finished was consumed; the box (with on_delivered) outlives the producer"
    );
    let opener = gate.open_later();
    drop(w); // cancel waits for the worker to leave the gate
    opener.join().unwrap();
    drop(d); // joins the worker, discards what is left
    let outcomes: Vec<_> = (0..5).map(|_| delivered.recv_timeout(WAIT).unwrap()).collect();
    assert!(outcomes.iter().all(|o| matches!(o, Delivered::Ran(0) | Delivered::Discarded)), "{outcomes:?}");
    told(&rx, 1);
    assert_eq!(drops.count(), 3, "the post's closure and the producer's two, each once");
}

#[test]
fn a_producer_of_nothing_finishes_at_once_and_frees_its_context_there() {
    let d = sync_dispatcher();
    let drops = Drops::default();
    let (producer, _delivered, finished) = produce(&d, "none", 0, 0, &drops);
    assert_eq!(finished.recv_timeout(WAIT).unwrap().0, 0);
    drop(producer); // joined: on_finished has returned, and with nothing posted it freed the box
    assert_eq!(drops.count(), 2);
    let refused = Producer::start(&d, "n\0ul", 1, 0, |_| {}, |_| {}).expect_err("NUL in dest");
    assert_eq!(refused.reason, PostError::InteriorNul(InteriorNul { arg: "dest", offset: 1 }));
}

#[test]
#[cfg_attr(miri, ignore = "many threads and messages: slow under Miri")]
fn cancels_racing_a_producer_never_free_a_handler_the_worker_is_using() {
    // Risk: a cancel on this thread frees boxes while the worker thread is inside their callback.
    struct Counting {
        received: Arc<AtomicUsize>,
        _token: Token,
    }
    impl OnSend for Counting {
        fn on_send(&self, _dest: &str, _msg: &str) {
            self.received.fetch_add(1, Ordering::Relaxed);
        }
    }
    let d = sync_dispatcher();
    let (drops, received) = (Drops::default(), Arc::new(AtomicUsize::new(0)));
    let (producer, delivered, _finished) = produce(&d, "race", 20_000, 0, &Drops::default());
    let mut registered = 0;
    while !producer.is_finished() || d.queued() > 0 {
        let w = register(
            &d,
            "race",
            Box::new(Counting { received: Arc::clone(&received), _token: drops.token() }),
        );
        registered += 1;
        thread::yield_now();
        assert!(cancel_(&d, "race", w).is_ok());
        assert_eq!(drops.count(), registered, "freed by cancel_, once");
    }
    assert_eq!(delivered.iter().take(20_000).count(), 20_000);
    drop((producer, d));
    assert!(registered > 0);
}
