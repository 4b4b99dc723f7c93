//! How many hosts: a number, or a share of them. One type for every limit
//! taken of a fleet (a fan-out's concurrency and error budget, the central
//! guards' hosts in repair), parsed and rounded one way.

/// How many hosts: a number, or a percentage of the targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    Count(usize),
    Percent(f64),
}

impl Amount {
    /// `10` or `25%`.
    pub fn parse(text: &str) -> Result<Amount, String> {
        match text.strip_suffix('%') {
            Some(p) => match p.parse::<f64>() {
                Ok(v) if (0.0..=100.0).contains(&v) => Ok(Amount::Percent(v)),
                _ => Err(format!("{text:?}: a percentage from 0% to 100%")),
            },
            None => text
                .parse()
                .map(Amount::Count)
                .map_err(|_| format!("{text:?}: a number of hosts, or a percentage such as 10%")),
        }
    }

    /// Of `targets` hosts; `round_up` for concurrency (a share of a host
    /// is one host), down for an error budget.
    pub fn of(self, targets: usize, round_up: bool) -> usize {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => {
                let exact = targets as f64 * p / 100.0;
                (if round_up {
                    exact.ceil()
                } else {
                    exact.floor()
                }) as usize
            }
        }
    }
}
