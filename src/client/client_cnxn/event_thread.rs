//! `ClientCnxn.EventThread`: one FIFO of watch events (with their watchers materialized
//! when queued) and async callbacks, delivered in order on thread `<name>-EventThread`.

use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;

use crossbeam_channel::{unbounded, Receiver, Sender};

use crate::client::watched_event::{WatchedEvent, Watcher};
use crate::proto::event_type;

pub enum EventItem {
    Event(WatchedEvent, Vec<Watcher>),
    Callback(Box<dyn FnOnce() + Send>),
    /// Drain what is queued, then stop (`eventOfDeath`).
    Death,
}

pub struct EventQueue {
    tx: Sender<EventItem>,
    /// State of the last queued event: a None event with the same state is dropped.
    last_state: AtomicI32,
}

impl EventQueue {
    pub fn new() -> (EventQueue, Receiver<EventItem>) {
        let (tx, rx) = unbounded();
        // Upstream's EventThread starts out in Disconnected: failed attempts before the
        // first connection report nothing.
        (EventQueue { tx, last_state: AtomicI32::new(crate::proto::keeper_state::DISCONNECTED) }, rx)
    }

    pub fn queue_event(&self, ev: WatchedEvent, watchers: Vec<Watcher>) {
        let prev = self.last_state.swap(ev.state, Ordering::AcqRel);
        if ev.event_type == event_type::NONE && prev == ev.state {
            return;
        }
        let _ = self.tx.send(EventItem::Event(ev, watchers));
    }

    pub fn queue_callback(&self, cb: Box<dyn FnOnce() + Send>) {
        let _ = self.tx.send(EventItem::Callback(cb));
    }

    pub fn queue_death(&self) {
        let _ = self.tx.send(EventItem::Death);
    }
}

pub struct EventThread;

impl EventThread {
    pub fn start(prefix: &str, rx: Receiver<EventItem>) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new().name(format!("{prefix}-EventThread")).spawn(move || {
            while let Ok(item) = rx.recv() {
                match item {
                    EventItem::Event(ev, watchers) => {
                        for w in watchers {
                            // A panicking watcher must not take the event thread down.
                            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w(&ev)));
                            if r.is_err() {
                                log::error!("Error while calling watcher for {ev}");
                            }
                        }
                    }
                    EventItem::Callback(cb) => {
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(cb)).is_err() {
                            log::error!("Caught unexpected throwable in a callback");
                        }
                    }
                    EventItem::Death => break,
                }
            }
            log::info!("EventThread shut down");
        })
    }
}
