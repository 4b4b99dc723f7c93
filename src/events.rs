//! The hand-off between collectd's threads and ours: a bounded queue that
//! never blocks the producer. collectd's write and notification callbacks
//! offer an owned event and return at once; when the consumer falls behind,
//! events are dropped and counted instead of slowing collectd down.

use crate::collectd::{Metric, Notification};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};

/// Something collectd handled that the rules may want to see.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Event {
    Metric(Metric),
    Notification(Notification),
}

/// `None` in the channel is the stop signal.
type Item = Option<Event>;

/// The producer side, shared by all of collectd's threads.
pub struct EventQueue {
    tx: SyncSender<Item>,
    accepted: AtomicU64,
    dropped: AtomicU64,
}

/// The consumer side, owned by one thread of ours.
pub struct EventReceiver {
    rx: Receiver<Item>,
}

/// A queue holding at most `capacity` events.
pub fn bounded(capacity: usize) -> (EventQueue, EventReceiver) {
    let (tx, rx) = sync_channel(capacity);
    let queue = EventQueue {
        tx,
        accepted: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    };
    (queue, EventReceiver { rx })
}

impl EventQueue {
    /// Enqueues without waiting; false (and counted) when full or closed.
    pub fn offer(&self, event: Event) -> bool {
        match self.tx.try_send(Some(event)) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Events handed to the consumer so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Events lost because the consumer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Tells the consumer to stop after the events already queued. Waits for
    /// room, so call it only at shutdown, never from a write callback.
    pub fn close(&self) {
        let _ = self.tx.send(None);
    }
}

/// What waiting on the queue gave.
// Boxing the event would add an allocation per event for nothing: this
// value only lives for one match on the engine thread.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Received {
    Event(Event),
    /// Nothing arrived in time.
    Idle,
    /// The queue was closed (shutdown).
    Closed,
}

impl EventReceiver {
    /// The next event, or `None` once the queue is closed.
    pub fn recv(&self) -> Option<Event> {
        self.rx.recv().ok().flatten()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Received {
        match self.rx.recv_timeout(timeout) {
            Ok(Some(event)) => Received::Event(event),
            Ok(None) | Err(RecvTimeoutError::Disconnected) => Received::Closed,
            Err(RecvTimeoutError::Timeout) => Received::Idle,
        }
    }

    /// An event already waiting, without waiting.
    pub fn try_recv(&self) -> Received {
        match self.rx.try_recv() {
            Ok(Some(event)) => Received::Event(event),
            Ok(None) | Err(TryRecvError::Disconnected) => Received::Closed,
            Err(TryRecvError::Empty) => Received::Idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectd::Severity;

    fn event(n: u32) -> Event {
        Event::Notification(Notification {
            severity: Severity::Okay,
            time: 0.0,
            message: n.to_string(),
            host: String::new(),
            plugin: String::new(),
            plugin_instance: String::new(),
            type_: String::new(),
            type_instance: String::new(),
            meta: vec![],
        })
    }

    #[test]
    fn drops_and_counts_when_full_and_stops_in_order() {
        let (q, rx) = bounded(2);
        assert!(q.offer(event(1)));
        assert!(q.offer(event(2)));
        assert!(!q.offer(event(3)));
        assert_eq!((q.accepted(), q.dropped()), (2, 1));
        assert_eq!(rx.recv(), Some(event(1)));
        q.close();
        assert_eq!(rx.recv(), Some(event(2)));
        assert_eq!(rx.recv(), None);
    }
}
