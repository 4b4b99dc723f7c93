//! Which commands may start now: the pure bookkeeping behind the runner's
//! "at most N at once, never the same service/command twice" rule.

use crate::task::CommandRef;
use std::collections::HashMap;
use std::time::SystemTime;

/// Why a command may not start right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The same service/command is still running.
    AlreadyRunning,
    /// `max` commands are running.
    Busy { max: usize },
}

/// The running service/command pairs with their start, bounded.
#[derive(Debug)]
pub(super) struct Slots {
    running: HashMap<CommandRef, SystemTime>,
    max: usize,
}

impl Slots {
    pub(super) fn new(max: usize) -> Slots {
        Slots {
            running: HashMap::new(),
            max: max.max(1),
        }
    }

    pub(super) fn try_acquire(&mut self, service: &str, command: &str) -> Result<(), Refusal> {
        let key = CommandRef::new(service, command);
        if self.running.contains_key(&key) {
            return Err(Refusal::AlreadyRunning);
        }
        if self.running.len() >= self.max {
            return Err(Refusal::Busy { max: self.max });
        }
        self.running.insert(key, SystemTime::now());
        Ok(())
    }

    /// What runs now, and since when, in name order.
    pub(super) fn running(&self) -> Vec<(CommandRef, SystemTime)> {
        let mut all: Vec<_> = self.running.iter().map(|(k, t)| (k.clone(), *t)).collect();
        all.sort();
        all
    }

    pub(super) fn release(&mut self, service: &str, command: &str) {
        self.running.remove(&CommandRef::new(service, command));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_pair_and_bounded() {
        let mut s = Slots::new(2);
        assert_eq!(s.try_acquire("a", "x"), Ok(()));
        assert_eq!(s.try_acquire("a", "x"), Err(Refusal::AlreadyRunning));
        assert_eq!(s.try_acquire("a", "y"), Ok(()));
        assert_eq!(s.try_acquire("b", "x"), Err(Refusal::Busy { max: 2 }));
        s.release("a", "x");
        assert_eq!(s.try_acquire("b", "x"), Ok(()));
        assert_eq!(s.try_acquire("a", "x"), Err(Refusal::Busy { max: 2 }));
    }
}
