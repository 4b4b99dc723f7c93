//! The events one rule file's worker is owed, held until there are enough
//! of them (or they have waited long enough) to be worth a frame: each
//! frame costs the worker a wake-up, a pipe read and a report, whatever
//! it holds, so a file that wants a few events of each of the engine's
//! batches (a central file among fifty series a host) is sent them a few
//! dozen at a time instead. Pure: the engine says what time it is.

use crate::events::batch::{new_batch, seal_batch};
use std::time::{Duration, Instant};

/// Events held at most before they are sent.
pub const HOLD_EVENTS: u32 = 1024;
/// Bytes of events held at most before they are sent.
pub const HOLD_BYTES: usize = 256 * 1024;
/// How long a central engine holds a file's first event at most: far
/// below any collectd interval. (A host's engine sends each batch at once:
/// its files see few events, and its repairs react in milliseconds.)
pub const CENTRAL_HOLD_FOR: Duration = Duration::from_millis(20);

/// One file's held events.
pub struct Hold {
    /// How long the first held event may wait.
    hold_for: Duration,
    /// A frame from [`new_batch`] with the events appended; empty when
    /// nothing is held.
    frame: Vec<u8>,
    count: u32,
    /// When the first held event arrived.
    since: Option<Instant>,
}

impl Hold {
    /// Holds events for at most `hold_for` (zero: until the engine's next
    /// look, right after the batch that brought them).
    pub fn new(hold_for: Duration) -> Hold {
        Hold {
            hold_for,
            frame: Vec::new(),
            count: 0,
            since: None,
        }
    }

    /// Holds `count` encoded events (bytes as
    /// [`crate::events::batch::scan`] delimits them, one after the other).
    /// True when the hold is now full and should be sent.
    pub fn push(&mut self, events: &[u8], count: u32, now: Instant) -> bool {
        if count == 0 {
            // Nothing to hold (and nothing to wait for).
            return self.full();
        }
        if self.count == 0 {
            self.frame = new_batch(HOLD_BYTES.min(events.len() * 64));
            self.since = Some(now);
        }
        self.frame.extend_from_slice(events);
        self.count += count;
        self.full()
    }

    /// Whether enough is held to send at once.
    pub fn full(&self) -> bool {
        self.count >= HOLD_EVENTS || self.frame.len() >= HOLD_BYTES
    }

    /// When the held events are due to be sent (`None`: nothing held).
    pub fn due(&self) -> Option<Instant> {
        self.since.map(|since| since + self.hold_for)
    }

    /// The held events as a whole frame numbered `seq`, and how many;
    /// afterwards nothing is held. `None` when nothing was.
    pub fn take(&mut self, seq: u64) -> Option<(Vec<u8>, u32)> {
        if self.count == 0 {
            return None;
        }
        let mut frame = std::mem::take(&mut self.frame);
        let count = std::mem::take(&mut self.count);
        self.since = None;
        seal_batch(&mut frame, seq, count);
        Some((frame, count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::batch::{BatchReader, push_event};
    use crate::events::{Event, Notification, Severity};

    fn notification(message: &str) -> Notification {
        Notification {
            severity: Severity::Okay,
            time: 0.0,
            message: message.into(),
            host: "h".into(),
            plugin: "p".into(),
            plugin_instance: String::new(),
            type_: String::new(),
            type_instance: String::new(),
            meta: Vec::new(),
        }
    }

    fn encoded(n: usize) -> Vec<u8> {
        let mut buf = Vec::new();
        push_event(
            &mut buf,
            &Event::Notification(notification(&format!("n{n}"))),
        );
        buf
    }

    #[test]
    fn held_events_come_out_as_one_frame_in_order_when_due_or_full() {
        let t0 = Instant::now();
        let mut hold = Hold::new(CENTRAL_HOLD_FOR);
        assert_eq!(hold.due(), None);
        assert!(hold.take(7).is_none());
        assert!(!hold.push(&[], 0, t0));
        assert_eq!(hold.due(), None);
        assert!(!hold.push(&encoded(0), 1, t0));
        assert!(!hold.push(&encoded(1), 1, t0 + Duration::from_millis(5)));
        // Due counted from the first event, not the last.
        assert_eq!(hold.due(), Some(t0 + CENTRAL_HOLD_FOR));
        let (frame, count) = hold.take(7).unwrap();
        assert_eq!(count, 2);
        assert_eq!(hold.due(), None);
        let len = u32::from_le_bytes(frame[0..4].try_into().unwrap()) as usize;
        assert_eq!(len, frame.len() - 4);
        let mut reader = BatchReader::new(&frame[4..]).unwrap();
        assert_eq!(reader.seq, 7);
        let mut slot = Event::Notification(notification(""));
        let mut messages = Vec::new();
        while reader.next_into(&mut slot).unwrap() {
            if let Event::Notification(n) = &slot {
                messages.push(n.message.clone());
            }
        }
        assert_eq!(messages, ["n0", "n1"]);
        // Full by count.
        let mut full = false;
        for i in 0..HOLD_EVENTS {
            full = hold.push(&encoded(i as usize), 1, t0);
            assert_eq!(full, i + 1 == HOLD_EVENTS);
        }
        assert!(full);
        // Full by bytes; with no time to hold, due at once.
        let mut hold = Hold::new(Duration::ZERO);
        assert!(hold.push(&vec![0u8; HOLD_BYTES], 1, t0));
        assert_eq!(hold.due(), Some(t0));
    }
}
