//! The hand-off between collectd's threads and ours: a bounded buffer of
//! encoded events that never blocks the producer.
//!
//! collectd's write callback encodes the value list straight into the
//! buffer (the batch encoding of [`batch`]) under a
//! short lock and returns; the engine thread takes the whole buffer at once
//! and sends it, as it is, to every rule worker. No owned copy, no
//! allocation per value, no re-encoding. When the engine falls behind and
//! the buffer is full, events are dropped and counted instead of slowing
//! collectd down.

pub mod batch;
mod metric;
mod notification;

use batch::new_batch;
pub use metric::{DsType, Metric, Missing, Value, non_finite_name, non_finite_value};
pub use notification::{MetaValue, Notification, Severity};
use serde::Serialize;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// Something collectd handled that the rules may want to see.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Event {
    Metric(Metric),
    Notification(Notification),
    /// A series went silent.
    Missing(Missing),
}

/// Encoded events waiting for the engine, as the body of a batch frame.
#[derive(Debug)]
pub struct Batch {
    /// A frame from [`new_batch`]: header space, then the events.
    pub frame: Vec<u8>,
    pub count: u32,
}

/// What waiting on the queue gave.
#[derive(Debug)]
pub enum Received {
    Batch(Batch),
    /// Nothing arrived in time.
    Idle,
    /// The queue was closed (shutdown) and is empty.
    Closed,
}

struct Pending {
    batch: Batch,
    closed: bool,
}

/// Shared by collectd's threads (producers) and the engine (consumer).
pub struct EventQueue {
    pending: Mutex<Pending>,
    ready: Condvar,
    /// Bytes of encoded events held at most.
    limit: usize,
    accepted: AtomicU64,
    dropped: AtomicU64,
    /// Consumers asleep in [`EventQueue::take`]: what a test waits for
    /// before it shows that an event wakes them.
    waiting: AtomicU64,
}

thread_local! {
    /// Each producer thread encodes into its own scratch buffer, outside
    /// the lock; only the copy into the shared buffer is under it.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
}

impl EventQueue {
    /// A queue holding at most `limit` bytes of encoded events.
    pub fn new(limit: usize) -> EventQueue {
        EventQueue {
            pending: Mutex::new(Pending {
                batch: empty_batch(),
                closed: false,
            }),
            ready: Condvar::new(),
            limit,
            accepted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
        }
    }

    /// Enqueues the event `encode` appends, without waiting; false (and
    /// counted) when full or closed.
    pub fn offer_with(&self, encode: impl FnOnce(&mut Vec<u8>)) -> bool {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            encode(&mut scratch);
            let Ok(mut pending) = self.pending.lock() else {
                return self.drop_one();
            };
            if pending.closed || pending.batch.frame.len() + scratch.len() > self.limit {
                drop(pending);
                return self.drop_one();
            }
            pending.batch.frame.extend_from_slice(&scratch);
            pending.batch.count += 1;
            let first = pending.batch.count == 1;
            drop(pending);
            self.accepted.fetch_add(1, Ordering::Relaxed);
            // One wake-up per batch, not per event.
            if first {
                self.ready.notify_one();
            }
            true
        })
    }

    fn drop_one(&self) -> bool {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Takes everything queued, waiting at most `timeout` for something.
    pub fn take(&self, timeout: Duration) -> Received {
        // Allocated before taking the lock, which the producers share.
        let fresh = empty_batch();
        let Ok(guard) = self.pending.lock() else {
            return Received::Closed;
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waited = self
            .ready
            .wait_timeout_while(guard, timeout, |p| p.batch.count == 0 && !p.closed);
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let Ok((mut pending, _)) = waited else {
            return Received::Closed;
        };
        if pending.batch.count > 0 {
            let batch = std::mem::replace(&mut pending.batch, fresh);
            return Received::Batch(batch);
        }
        if pending.closed {
            Received::Closed
        } else {
            Received::Idle
        }
    }

    /// Events accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Events lost because the consumer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Events waiting now.
    pub fn depth(&self) -> u64 {
        self.pending.lock().map_or(0, |p| u64::from(p.batch.count))
    }

    /// Refuses new events; the consumer gets what is queued, then
    /// [`Received::Closed`].
    pub fn close(&self) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.closed = true;
        }
        self.ready.notify_all();
    }
}

fn empty_batch() -> Batch {
    Batch {
        frame: new_batch(64 * 1024),
        count: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::Severity;
    use super::batch::{BATCH_HEADER, decode_batch, push_event, seal_batch};
    use super::*;

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

    fn events(batch: Batch) -> Vec<Event> {
        let mut frame = batch.frame;
        seal_batch(&mut frame, 0, batch.count);
        decode_batch(&frame[4..]).unwrap().1
    }

    #[test]
    fn drops_and_counts_when_full_and_stops_in_order() {
        let mut one = Vec::new();
        push_event(&mut one, &event(1));
        let q = EventQueue::new(BATCH_HEADER + 2 * one.len());
        assert!(q.offer_with(|b| push_event(b, &event(1))));
        assert!(q.offer_with(|b| push_event(b, &event(2))));
        assert!(!q.offer_with(|b| push_event(b, &event(3))));
        assert_eq!((q.accepted(), q.dropped(), q.depth()), (2, 1, 2));
        let Received::Batch(batch) = q.take(Duration::ZERO) else {
            panic!("a batch")
        };
        assert_eq!(events(batch), vec![event(1), event(2)]);
        assert!(matches!(q.take(Duration::ZERO), Received::Idle));
        assert!(q.offer_with(|b| push_event(b, &event(4))));
        q.close();
        assert!(!q.offer_with(|b| push_event(b, &event(5))));
        let Received::Batch(batch) = q.take(Duration::ZERO) else {
            panic!("the last batch")
        };
        assert_eq!(events(batch), vec![event(4)]);
        assert!(matches!(q.take(Duration::from_secs(5)), Received::Closed));
    }

    #[test]
    fn a_waiting_consumer_wakes_up_for_the_first_event() {
        let q = std::sync::Arc::new(EventQueue::new(1 << 20));
        // A day: a consumer that the event did not wake would hang the test.
        let consumer = {
            let q = std::sync::Arc::clone(&q);
            std::thread::spawn(move || q.take(Duration::from_secs(86_400)))
        };
        while q.waiting.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        // Asleep (or about to be, under the lock): the event must wake it.
        q.offer_with(|b| push_event(b, &event(7)));
        let Received::Batch(batch) = consumer.join().unwrap() else {
            panic!("woken with a batch")
        };
        assert_eq!(events(batch), vec![event(7)]);
    }
}
