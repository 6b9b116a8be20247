//! `org.apache.zookeeper.util.CircularBlockingQueue`: a bounded blocking queue that,
//! when full, drops its oldest element to make room instead of blocking the producer.
//! The election layer uses it so that a peer that is slow or gone never holds up the
//! sender, and only the freshest notification waits for it.
//!
//! Built on a bounded crossbeam channel, so consumers can block with a timeout or wait
//! in a `select!` beside a stop channel.

use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

pub struct CircularBlockingQueue<T> {
    tx: Sender<T>,
    rx: Receiver<T>,
}

impl<T> CircularBlockingQueue<T> {
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = bounded(capacity.max(1));
        CircularBlockingQueue { tx, rx }
    }

    /// Adds `v`, discarding the oldest elements while the queue is full. Returns how
    /// many were discarded.
    pub fn offer(&self, mut v: T) -> usize {
        let mut dropped = 0;
        loop {
            match self.tx.try_send(v) {
                Ok(()) => return dropped,
                Err(TrySendError::Full(back)) => {
                    v = back;
                    if self.rx.try_recv().is_ok() {
                        dropped += 1;
                        log::debug!("Queue is full. Discarding oldest element [count={dropped}]");
                    }
                }
                // We hold the receiver, so the channel cannot be disconnected.
                Err(TrySendError::Disconnected(_)) => return dropped,
            }
        }
    }

    /// Waits up to `timeout` for the oldest element.
    pub fn poll(&self, timeout: Duration) -> Option<T> {
        match self.rx.recv_timeout(timeout) {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    pub fn try_poll(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    pub fn clear(&self) {
        while self.rx.try_recv().is_ok() {}
    }

    /// For `select!` with other channels.
    pub fn receiver(&self) -> &Receiver<T> {
        &self.rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_oldest_when_full() {
        let q = CircularBlockingQueue::new(2);
        assert_eq!(q.offer(1), 0);
        assert_eq!(q.offer(2), 0);
        assert_eq!(q.offer(3), 1);
        assert_eq!(q.len(), 2);
        assert_eq!(q.try_poll(), Some(2));
        assert_eq!(q.poll(Duration::from_millis(1)), Some(3));
        assert_eq!(q.poll(Duration::from_millis(1)), None);
        let one = CircularBlockingQueue::new(1);
        one.offer("a");
        one.offer("b");
        assert_eq!(one.try_poll(), Some("b"));
    }
}
