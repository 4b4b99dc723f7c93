//! Which result the broker has confirmed. A result is journaled as
//! `published` only once the broker has it (PUBACK for QoS 1, PUBCOMP for
//! QoS 2, written to the socket for QoS 0): before that it lives in the
//! MQTT client's memory only, and a crash would lose it. Pure bookkeeping
//! over the client's events, so it is tested without a broker.
//!
//! rumqttc gives a publish its packet id in its event loop and reports
//! `Outgoing::Publish(pkid)` when it writes one, in the order publishes
//! were queued; after a reconnection it writes the unconfirmed ones again
//! with the same ids.

use std::collections::{HashMap, VecDeque};

/// The results queued for publishing and the ones on the wire, by packet id.
#[derive(Debug, Default)]
pub struct Confirmations {
    /// Queued, not yet written: the journaled task each one belongs to
    /// (`None` for a refusal, which is not journaled).
    queued: VecDeque<Option<u64>>,
    /// Written, waiting for the broker's confirmation.
    on_the_wire: HashMap<u16, Option<u64>>,
}

impl Confirmations {
    /// A result was handed to the client (before the client takes it).
    pub fn queued(&mut self, task: Option<u64>) {
        self.queued.push_back(task);
    }

    /// The client wrote a publish with `pkid`. For QoS 0 (`pkid` 0) that is
    /// all the confirmation there will be: the task is returned.
    pub fn written(&mut self, pkid: u16) -> Option<u64> {
        if pkid != 0 && self.on_the_wire.contains_key(&pkid) {
            return None; // written again after a reconnection
        }
        let task = self.queued.pop_front().flatten();
        if pkid == 0 {
            return task;
        }
        self.on_the_wire.insert(pkid, task);
        None
    }

    /// The broker confirmed `pkid` (PUBACK or PUBCOMP): its task, if it is
    /// a journaled one.
    pub fn confirmed(&mut self, pkid: u16) -> Option<u64> {
        self.on_the_wire.remove(&pkid).flatten()
    }

    /// Results not yet confirmed (queued or on the wire).
    pub fn outstanding(&self) -> usize {
        self.queued.len() + self.on_the_wire.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_confirmed_by_their_packet_id_only() {
        let mut c = Confirmations::default();
        c.queued(Some(7));
        c.queued(None);
        c.queued(Some(9));
        assert_eq!(c.written(1), None);
        assert_eq!(c.written(2), None);
        assert_eq!(c.written(3), None);
        assert_eq!(c.outstanding(), 3);
        // Out of order, as brokers may confirm.
        assert_eq!(c.confirmed(3), Some(9));
        assert_eq!(c.confirmed(2), None); // a refusal
        assert_eq!(c.confirmed(1), Some(7));
        assert_eq!(c.confirmed(1), None);
        assert_eq!(c.outstanding(), 0);
    }

    #[test]
    fn writes_after_a_reconnection_do_not_shift_the_queue() {
        let mut c = Confirmations::default();
        c.queued(Some(1));
        c.queued(Some(2));
        assert_eq!(c.written(10), None);
        // Reconnected: 10 is written again, then 2 for the first time.
        assert_eq!(c.written(10), None);
        assert_eq!(c.written(11), None);
        assert_eq!(c.confirmed(11), Some(2));
        assert_eq!(c.confirmed(10), Some(1));
    }

    #[test]
    fn qos_0_is_confirmed_when_written() {
        let mut c = Confirmations::default();
        c.queued(Some(5));
        assert_eq!(c.written(0), Some(5));
        assert_eq!(c.outstanding(), 0);
    }
}
