//! Acknowledgements, each sent once its message is handled: at once for
//! most, once its journal lines are on disk for an accepted task. Those
//! ready go out in the order their messages came; one waiting for the disk
//! holds back no other (MQTT 5 §4.6 asks for the order of arrival; brokers
//! match an acknowledgement by its packet id, and holding a refusal's
//! acknowledgement behind a stalled disk would have it delivered, and
//! answered, again after a crash).

use crate::mqtt::{AsyncClient, Publish};
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Which acknowledgement a handler will say is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket(u64);

/// The order of acknowledgements, without the client: what tests drive.
#[derive(Default)]
pub struct AckQueue<P> {
    next: u64,
    waiting: VecDeque<(Ticket, P, bool)>,
}

impl<P> AckQueue<P> {
    /// Takes a message's place in line; ready or not yet.
    pub fn push(&mut self, message: P, ready: bool) -> Ticket {
        let ticket = Ticket(self.next);
        self.next += 1;
        self.waiting.push_back((ticket, message, ready));
        ticket
    }

    /// The message of `ticket` may be acknowledged (a ticket from before
    /// [`AckQueue::clear`] is nobody's any more).
    pub fn ready(&mut self, ticket: Ticket) {
        if let Some(entry) = self.waiting.iter_mut().find(|(t, ..)| *t == ticket) {
            entry.2 = true;
        }
    }

    /// Hands the ready messages to `send` in order, as far as it takes
    /// them (false: its queue is full; they wait); those not ready keep
    /// their place.
    pub fn flush(&mut self, mut send: impl FnMut(&P) -> bool) {
        let mut full = false;
        self.waiting.retain(|(_, message, ready)| {
            if !*ready || full {
                return true;
            }
            full = !send(message);
            full
        });
    }

    /// Forgets every waiting acknowledgement: packet ids start again on a
    /// new connection, and the broker delivers those messages again.
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}

/// The acknowledgements of the session, shared by the loop and the tasks
/// that finish accepting a request.
pub struct Acks {
    queue: Mutex<AckQueue<Publish>>,
    client: AsyncClient,
}

impl Acks {
    pub fn new(client: AsyncClient) -> Acks {
        Acks {
            queue: Mutex::new(AckQueue::default()),
            client,
        }
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, AckQueue<Publish>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Acknowledges `p` as soon as those before it are.
    pub fn now(&self, p: &Publish) {
        let mut queue = self.queue();
        queue.push(p.clone(), true);
        queue.flush(|p| self.client.try_ack(p).is_ok());
    }

    /// Keeps `p`'s place; acknowledged after [`Acks::ready`].
    pub fn later(&self, p: &Publish) -> Ticket {
        self.queue().push(p.clone(), false)
    }

    pub fn ready(&self, ticket: Ticket) {
        let mut queue = self.queue();
        queue.ready(ticket);
        queue.flush(|p| self.client.try_ack(p).is_ok());
    }

    /// Hands waiting acknowledgements to rumqttc, in order, as far as its
    /// request queue takes them (the event loop empties it as it polls).
    pub fn flush(&self) {
        self.queue().flush(|p| self.client.try_ack(p).is_ok());
    }

    pub fn clear(&self) {
        self.queue().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_acknowledgement_waiting_for_the_disk_holds_back_no_other() {
        let mut queue = AckQueue::default();
        let mut sent = Vec::new();
        queue.push(1, true);
        let slow = queue.push(2, false);
        queue.push(3, true);
        queue.flush(|m| {
            sent.push(*m);
            true
        });
        assert_eq!(sent, vec![1, 3]);
        queue.ready(slow);
        queue.flush(|m| {
            sent.push(*m);
            true
        });
        assert_eq!(sent, vec![1, 3, 2]);
    }

    #[test]
    fn a_full_client_queue_keeps_them_in_order_and_a_new_connection_forgets_them() {
        let mut queue = AckQueue::default();
        queue.push("a", true);
        queue.push("b", true);
        let mut room = 1;
        let mut sent = Vec::new();
        queue.flush(|m| {
            if room == 0 {
                return false;
            }
            room -= 1;
            sent.push(*m);
            true
        });
        assert_eq!(sent, vec!["a"]);
        let old = queue.push("c", false);
        queue.clear();
        queue.ready(old);
        queue.flush(|m| {
            sent.push(*m);
            true
        });
        assert_eq!(sent, vec!["a"]);
    }
}
