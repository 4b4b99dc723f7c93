//! Blast-radius guards for repairs decided centrally, as AWS IoT Jobs and
//! SSM bound a rollout: at most so many hosts in repair at once (a share
//! of the known hosts, never of names seen in values), an error budget
//! after which repairs of a command stop until an operator resumes them
//! (spent only by repairs that ran and failed, or got no answer from an
//! online host), a cooldown per host, and no request for an unproven
//! value list, an unknown, paused or offline host. Pure: the caller says
//! what was decided, sent and finished, and when; the guards answer
//! whether a request may go out, and count what they held back and what
//! the hosts refused.

use crate::amount::Amount;
use crate::task::CommandRef;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// The limits on one service/command's repairs across the fleet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardPolicy {
    /// Hosts in repair at once: a number, or a share of the known hosts
    /// (rounded up: never less than one).
    pub max_in_flight: Amount,
    /// Failed or timed-out repairs within `budget_window` after which
    /// automatic repairs stop until resumed; 0: they never stop.
    pub error_budget: usize,
    pub budget_window: Duration,
    /// Least time between two requests of this command to one host.
    pub host_cooldown: Duration,
}

impl Default for GuardPolicy {
    /// One host in ten at a time, stop after 3 failures in 10 minutes, a
    /// host repaired at most every 5 minutes.
    fn default() -> Self {
        GuardPolicy {
            max_in_flight: Amount::Percent(10.0),
            error_budget: 3,
            budget_window: Duration::from_secs(600),
            host_cooldown: Duration::from_secs(300),
        }
    }
}

/// Whether a decision becomes a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Held(HeldBack),
}

/// Why a decision was held back, in the order the guards look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HeldBack {
    /// The value list it was made on does not prove that its sender may
    /// ask for this host (see `origins.rs`).
    Unproven,
    /// Not a host central rules know (no presence, not in `FleetHostKeys`).
    UnknownHost,
    /// A maintenance pause covers it: the host's own, or the controller's.
    Paused,
    /// The rule held it itself while another condition holds (its
    /// decision's `inhibited` field: the database the app needs is down).
    Inhibited,
    /// The host's presence says offline.
    Offline,
    /// The command's error budget is spent; an operator resumes it.
    Stopped,
    /// The same repair of this host is still under way.
    InFlight,
    /// The host was sent this command less than the cooldown ago.
    Cooldown,
    /// As many hosts as allowed are in repair already.
    Concurrency,
}

impl HeldBack {
    /// The word `status` and the log show.
    pub fn as_str(self) -> &'static str {
        match self {
            HeldBack::Unproven => "unproven",
            HeldBack::UnknownHost => "unknown_host",
            HeldBack::Paused => "paused",
            HeldBack::Inhibited => "inhibited",
            HeldBack::Offline => "offline",
            HeldBack::Stopped => "stopped",
            HeldBack::InFlight => "in_flight",
            HeldBack::Cooldown => "cooldown",
            HeldBack::Concurrency => "concurrency",
        }
    }
}

/// What the controller knows of a decision's host when it decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostFacts {
    /// The value list proves its sender may ask for this host.
    pub proven: bool,
    /// The host is one central rules may repair.
    pub known: bool,
    /// A pause covers the decision.
    pub paused: bool,
    /// The rule said the decision is inhibited.
    pub inhibited: bool,
    /// Its presence says offline.
    pub offline: bool,
    /// Known hosts: the base of share-based limits.
    pub fleet: usize,
}

/// Why a host did not run a request: none of these spends the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Refusal {
    /// Its clock and the controller's disagree by more than `CommandMaxAge`.
    Stale,
    /// A maintenance pause on the host.
    Paused,
    /// Too many commands running there.
    Busy,
    /// The controller's key may not ask for it, or the signature failed.
    Rights,
    /// The host has no such service or command.
    UnknownCommand,
    /// The host could not read or take the request.
    Invalid,
    /// The host could not record the task (its disk).
    NotRecorded,
    /// The command was running when the host's collectd stopped.
    Interrupted,
    /// The host went offline without answering.
    WentOffline,
    /// Any other code of the host's own (0x1000 and above).
    Other,
}

impl Refusal {
    /// The word `status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Stale => "stale",
            Refusal::Paused => "paused",
            Refusal::Busy => "busy",
            Refusal::Rights => "rights",
            Refusal::UnknownCommand => "unknown_command",
            Refusal::Invalid => "invalid",
            Refusal::NotRecorded => "not_recorded",
            Refusal::Interrupted => "interrupted",
            Refusal::WentOffline => "went_offline",
            Refusal::Other => "other",
        }
    }
}

/// How a repair ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The command answered 0.
    Succeeded,
    /// The command ran and failed (its exit code, a time limit, or it
    /// could not start).
    Failed,
    /// No answer in time from a host that is online.
    TimedOut,
    /// The command runs or ran there for another task (another
    /// controller's request, a local rule): neither a success nor a
    /// failure of this one.
    DoneElsewhere,
    /// The host did not run it, and said why.
    Refused(Refusal),
}

impl Outcome {
    /// What the host's result code says of the repair. Only a command
    /// that ran and failed is a failure; the codes a host refuses with
    /// (0x1000 and above, but for a time limit and a failed start) are
    /// not.
    pub fn of_code(result: i64) -> Outcome {
        use crate::task::code;
        let refused = Outcome::Refused;
        match result {
            0 => Outcome::Succeeded,
            code::ALREADY_RUNNING | code::REPEATED_RULE | code::DUPLICATE_TASK => {
                Outcome::DoneElsewhere
            }
            code::TIMED_OUT | code::SPAWN_FAILED => Outcome::Failed,
            code::STALE => refused(Refusal::Stale),
            code::PAUSED => refused(Refusal::Paused),
            code::BUSY => refused(Refusal::Busy),
            code::UNSIGNED
            | code::UNKNOWN_KEY
            | code::BAD_SIGNATURE
            | code::WRONG_HOST
            | code::NOT_PERMITTED => refused(Refusal::Rights),
            code::NO_SERVICES | code::UNKNOWN_SERVICE | code::UNKNOWN_COMMAND => {
                refused(Refusal::UnknownCommand)
            }
            code::UNSUPPORTED | code::INVALID_REQUEST => refused(Refusal::Invalid),
            code::NOT_RECORDED => refused(Refusal::NotRecorded),
            code::INTERRUPTED => refused(Refusal::Interrupted),
            c if c >= 0x1000 => refused(Refusal::Other),
            _ => Outcome::Failed,
        }
    }
}

/// A command whose repairs the error budget has just stopped: what the
/// FAILURE notification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    pub command: CommandRef,
    pub failures: usize,
    pub window: Duration,
}

/// One command's guards, as `status` shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandState {
    pub command: CommandRef,
    pub in_flight: usize,
    pub failures: usize,
    pub error_budget: usize,
    pub stopped: bool,
    pub held: Vec<(HeldBack, u64)>,
    /// Requests the hosts refused, by why.
    pub refused: Vec<(Refusal, u64)>,
    /// Requests sent, and of them run for another task (another
    /// controller's request, a local rule).
    pub sent: u64,
    pub done_elsewhere: u64,
}

/// The guards' state over the fleet. Its memory is bounded by the known
/// hosts: a host's send time is forgotten once its cooldown is over.
#[derive(Debug, Default)]
pub struct Guards {
    default: GuardPolicy,
    policies: HashMap<CommandRef, GuardPolicy>,
    /// At most this many hosts in repair at once, all commands together.
    global_max_in_flight: Option<Amount>,
    in_flight: HashMap<CommandRef, HashSet<String>>,
    failures: HashMap<CommandRef, VecDeque<Instant>>,
    stopped: HashSet<CommandRef>,
    last_sent: HashMap<(String, CommandRef), Instant>,
    held: BTreeMap<(CommandRef, HeldBack), u64>,
    refused: BTreeMap<(CommandRef, Refusal), u64>,
    /// Requests sent and run elsewhere, by command.
    sent: BTreeMap<CommandRef, u64>,
    done_elsewhere: BTreeMap<CommandRef, u64>,
}

impl Guards {
    /// `default` for every command without a policy of its own.
    pub fn new(
        default: GuardPolicy,
        policies: HashMap<CommandRef, GuardPolicy>,
        global_max_in_flight: Option<Amount>,
    ) -> Guards {
        Guards {
            default,
            policies,
            global_max_in_flight,
            ..Guards::default()
        }
    }

    fn policy(&self, command: &CommandRef) -> GuardPolicy {
        self.policies.get(command).copied().unwrap_or(self.default)
    }

    /// Whether the decision to run `command` on `host` becomes a request
    /// now; a request it lets through counts as in flight from here on.
    pub fn decide(
        &mut self,
        now: Instant,
        host: &str,
        command: &CommandRef,
        facts: HostFacts,
    ) -> Verdict {
        let verdict = self.look(now, host, command, facts);
        match verdict {
            Verdict::Send => {
                *self.sent.entry(command.clone()).or_default() += 1;
                self.in_flight
                    .entry(command.clone())
                    .or_default()
                    .insert(host.to_string());
                self.last_sent
                    .insert((host.to_string(), command.clone()), now);
            }
            Verdict::Held(why) => {
                *self.held.entry((command.clone(), why)).or_default() += 1;
            }
        }
        verdict
    }

    fn look(&self, now: Instant, host: &str, command: &CommandRef, facts: HostFacts) -> Verdict {
        let policy = self.policy(command);
        let held = Verdict::Held;
        if !facts.proven {
            return held(HeldBack::Unproven);
        }
        if !facts.known {
            return held(HeldBack::UnknownHost);
        }
        if facts.paused {
            return held(HeldBack::Paused);
        }
        if facts.inhibited {
            return held(HeldBack::Inhibited);
        }
        if facts.offline {
            return held(HeldBack::Offline);
        }
        if self.stopped.contains(command) {
            return held(HeldBack::Stopped);
        }
        let flying = self.in_flight.get(command);
        if flying.is_some_and(|f| f.contains(host)) {
            return held(HeldBack::InFlight);
        }
        let last = self.last_sent.get(&(host.to_string(), command.clone()));
        if last.is_some_and(|t| now.saturating_duration_since(*t) < policy.host_cooldown) {
            return held(HeldBack::Cooldown);
        }
        let limit = policy.max_in_flight.of(facts.fleet, true).max(1);
        if flying.map_or(0, HashSet::len) >= limit {
            return held(HeldBack::Concurrency);
        }
        if let Some(global) = self.global_max_in_flight {
            let all: usize = self.in_flight.values().map(HashSet::len).sum();
            if all >= global.of(facts.fleet, true).max(1) {
                return held(HeldBack::Concurrency);
            }
        }
        Verdict::Send
    }

    /// The repair of `command` on `host` ended. `Some` when this failure
    /// spent the command's error budget: its repairs stop from now on.
    pub fn finished(
        &mut self,
        now: Instant,
        host: &str,
        command: &CommandRef,
        outcome: Outcome,
    ) -> Option<Stopped> {
        if let Some(flying) = self.in_flight.get_mut(command) {
            flying.remove(host);
        }
        match outcome {
            Outcome::Succeeded => return None,
            Outcome::DoneElsewhere => {
                *self.done_elsewhere.entry(command.clone()).or_default() += 1;
                return None;
            }
            Outcome::Refused(why) => {
                *self.refused.entry((command.clone(), why)).or_default() += 1;
                return None;
            }
            Outcome::Failed | Outcome::TimedOut => {}
        }
        let policy = self.policy(command);
        if policy.error_budget == 0 {
            return None;
        }
        let failures = self.failures.entry(command.clone()).or_default();
        failures.push_back(now);
        while failures
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > policy.budget_window)
        {
            failures.pop_front();
        }
        if failures.len() < policy.error_budget || self.stopped.contains(command) {
            return None;
        }
        self.stopped.insert(command.clone());
        Some(Stopped {
            command: command.clone(),
            failures: failures.len(),
            window: policy.budget_window,
        })
    }

    /// A request the guards let through never left (no broker connection,
    /// no signature): no longer in flight, and no cooldown started.
    pub fn cancel(&mut self, host: &str, command: &CommandRef) {
        if let Some(flying) = self.in_flight.get_mut(command) {
            flying.remove(host);
        }
        if let Some(n) = self.sent.get_mut(command) {
            *n = n.saturating_sub(1);
        }
        self.last_sent.remove(&(host.to_string(), command.clone()));
    }

    /// Forgets what no longer decides anything at `now`: send times past
    /// their cooldown, failures past their window.
    pub fn prune(&mut self, now: Instant) {
        let (default, policies) = (self.default, &self.policies);
        let policy = |c: &CommandRef| policies.get(c).copied().unwrap_or(default);
        self.last_sent
            .retain(|(_, c), t| now.saturating_duration_since(*t) < policy(c).host_cooldown);
        self.failures.retain(|c, f| {
            f.retain(|t| now.saturating_duration_since(*t) <= policy(c).budget_window);
            !f.is_empty()
        });
        self.in_flight.retain(|_, hosts| !hosts.is_empty());
    }

    /// How many per-host entries the guards hold (for the memory bound).
    pub fn entries(&self) -> usize {
        self.last_sent.len() + self.in_flight.values().map(HashSet::len).sum::<usize>()
    }

    /// An operator resumes a stopped command: its budget starts afresh.
    /// False when it was not stopped.
    pub fn resume(&mut self, command: &CommandRef) -> bool {
        self.failures.remove(command);
        self.stopped.remove(command)
    }

    /// Whether the error budget stopped `command`'s repairs.
    pub fn is_stopped(&self, command: &CommandRef) -> bool {
        self.stopped.contains(command)
    }

    /// Hosts in repair with `command` now.
    pub fn in_flight(&self, command: &CommandRef) -> usize {
        self.in_flight.get(command).map_or(0, HashSet::len)
    }

    /// Decisions held back so far, by command and reason.
    pub fn held(&self) -> &BTreeMap<(CommandRef, HeldBack), u64> {
        &self.held
    }

    /// Requests run there for another task, all commands together.
    pub fn done_elsewhere(&self) -> u64 {
        self.done_elsewhere.values().sum()
    }

    /// Each command the guards have seen, with its state at `now`, for
    /// `status`.
    pub fn commands(&self, now: Instant) -> Vec<CommandState> {
        let mut seen: Vec<&CommandRef> = self
            .in_flight
            .keys()
            .chain(self.failures.keys())
            .chain(self.stopped.iter())
            .chain(self.held.keys().map(|(c, _)| c))
            .chain(self.refused.keys().map(|(c, _)| c))
            .chain(self.sent.keys())
            .collect();
        seen.sort();
        seen.dedup();
        seen.into_iter()
            .map(|command| {
                let policy = self.policy(command);
                CommandState {
                    command: command.clone(),
                    in_flight: self.in_flight(command),
                    failures: self.failures.get(command).map_or(0, |f| {
                        f.iter()
                            .filter(|t| now.saturating_duration_since(**t) <= policy.budget_window)
                            .count()
                    }),
                    error_budget: policy.error_budget,
                    stopped: self.stopped.contains(command),
                    held: self
                        .held
                        .iter()
                        .filter(|((c, _), _)| c == command)
                        .map(|((_, why), n)| (*why, *n))
                        .collect(),
                    refused: self
                        .refused
                        .iter()
                        .filter(|((c, _), _)| c == command)
                        .map(|((_, why), n)| (*why, *n))
                        .collect(),
                    sent: self.sent.get(command).copied().unwrap_or(0),
                    done_elsewhere: self.done_elsewhere.get(command).copied().unwrap_or(0),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx() -> CommandRef {
        CommandRef::new("nginx", "restart")
    }

    fn guards(policy: GuardPolicy) -> Guards {
        Guards::new(policy, HashMap::new(), None)
    }

    /// A proven decision for a known, online, unpaused host of a fleet of
    /// `fleet` hosts.
    fn fine(fleet: usize) -> HostFacts {
        HostFacts {
            proven: true,
            known: true,
            paused: false,
            inhibited: false,
            offline: false,
            fleet,
        }
    }

    fn held(g: &Guards, why: HeldBack) -> u64 {
        g.held().get(&(nginx(), why)).copied().unwrap_or(0)
    }

    #[test]
    fn at_most_so_many_hosts_are_in_repair_at_once() {
        let now = Instant::now();
        let mut g = guards(GuardPolicy {
            max_in_flight: Amount::Percent(20.0),
            ..GuardPolicy::default()
        });
        // 20 % of 10 known hosts: two.
        let f = fine(10);
        assert_eq!(g.decide(now, "web0", &nginx(), f), Verdict::Send);
        assert_eq!(g.decide(now, "web1", &nginx(), f), Verdict::Send);
        assert_eq!(
            g.decide(now, "web2", &nginx(), f),
            Verdict::Held(HeldBack::Concurrency)
        );
        assert_eq!(g.in_flight(&nginx()), 2);
        // The same repair again while it runs.
        assert_eq!(
            g.decide(now, "web0", &nginx(), f),
            Verdict::Held(HeldBack::InFlight)
        );
        assert_eq!(g.finished(now, "web0", &nginx(), Outcome::Succeeded), None);
        assert_eq!(g.decide(now, "web2", &nginx(), f), Verdict::Send);
        assert_eq!(held(&g, HeldBack::Concurrency), 1);
        // A request that never left frees its slot and starts no cooldown.
        g.cancel("web2", &nginx());
        assert_eq!(g.in_flight(&nginx()), 1);
        assert_eq!(g.decide(now, "web2", &nginx(), f), Verdict::Send);
        assert_eq!(g.done_elsewhere(), 0);
        assert_eq!(held(&g, HeldBack::InFlight), 1);
    }

    #[test]
    fn unproven_unknown_paused_inhibited_and_offline_hosts_get_nothing_in_that_order() {
        let now = Instant::now();
        let mut g = guards(GuardPolicy::default());
        let f = fine(3);
        let cases = [
            (
                HostFacts {
                    proven: false,
                    known: false,
                    ..f
                },
                HeldBack::Unproven,
            ),
            (
                HostFacts {
                    known: false,
                    paused: true,
                    ..f
                },
                HeldBack::UnknownHost,
            ),
            (
                HostFacts {
                    paused: true,
                    offline: true,
                    ..f
                },
                HeldBack::Paused,
            ),
            (
                HostFacts {
                    inhibited: true,
                    offline: true,
                    ..f
                },
                HeldBack::Inhibited,
            ),
            (HostFacts { offline: true, ..f }, HeldBack::Offline),
        ];
        for (facts, why) in cases {
            assert_eq!(g.decide(now, "web1", &nginx(), facts), Verdict::Held(why));
            assert_eq!(held(&g, why), 1);
        }
        assert_eq!(g.in_flight(&nginx()), 0);
        assert_eq!(g.decide(now, "web1", &nginx(), f), Verdict::Send);
    }

    #[test]
    fn a_host_is_repaired_again_only_after_its_cooldown() {
        let t0 = Instant::now();
        let mut g = guards(GuardPolicy {
            max_in_flight: Amount::Count(5),
            host_cooldown: Duration::from_secs(60),
            ..GuardPolicy::default()
        });
        let f = fine(5);
        assert_eq!(g.decide(t0, "web1", &nginx(), f), Verdict::Send);
        g.finished(t0, "web1", &nginx(), Outcome::Succeeded);
        let soon = t0 + Duration::from_secs(59);
        assert_eq!(
            g.decide(soon, "web1", &nginx(), f),
            Verdict::Held(HeldBack::Cooldown)
        );
        // Another command, or another host, is not held by it.
        assert_eq!(
            g.decide(soon, "web1", &CommandRef::new("nginx", "reload"), f),
            Verdict::Send
        );
        assert_eq!(g.decide(soon, "web2", &nginx(), f), Verdict::Send);
        g.finished(soon, "web2", &nginx(), Outcome::Succeeded);
        g.finished(
            soon,
            "web1",
            &CommandRef::new("nginx", "reload"),
            Outcome::Succeeded,
        );
        // Past the cooldowns, nothing per host is kept.
        let later = t0 + Duration::from_secs(200);
        g.prune(later);
        assert_eq!(g.entries(), 0);
        assert_eq!(g.decide(later, "web1", &nginx(), f), Verdict::Send);
    }

    #[test]
    fn the_error_budget_stops_a_command_until_it_is_resumed() {
        let t0 = Instant::now();
        let mut g = guards(GuardPolicy {
            max_in_flight: Amount::Count(10),
            error_budget: 2,
            budget_window: Duration::from_secs(600),
            host_cooldown: Duration::ZERO,
        });
        let run = |g: &mut Guards, host: &str, at: Instant, outcome: Outcome| {
            assert_eq!(g.decide(at, host, &nginx(), fine(10)), Verdict::Send);
            g.finished(at, host, &nginx(), outcome)
        };
        assert_eq!(run(&mut g, "web1", t0, Outcome::Failed), None);
        // Another controller ran it: not a failure of ours.
        assert_eq!(run(&mut g, "web2", t0, Outcome::DoneElsewhere), None);
        // A failure outside the window no longer counts.
        let late = t0 + Duration::from_secs(601);
        assert_eq!(run(&mut g, "web3", late, Outcome::TimedOut), None);
        let stopped = run(&mut g, "web4", late, Outcome::Failed).expect("budget spent");
        assert_eq!((stopped.command, stopped.failures), (nginx(), 2));
        assert!(g.is_stopped(&nginx()));
        assert_eq!(
            g.decide(late, "web5", &nginx(), fine(10)),
            Verdict::Held(HeldBack::Stopped)
        );
        // Other commands go on.
        let reload = CommandRef::new("nginx", "reload");
        assert_eq!(g.decide(late, "web5", &reload, fine(10)), Verdict::Send);
        let state = &g.commands(late)[1];
        assert_eq!(
            (
                &state.command,
                state.stopped,
                state.failures,
                state.held.clone()
            ),
            (&nginx(), true, 2, vec![(HeldBack::Stopped, 1)])
        );
        assert!(g.resume(&nginx()));
        assert!(!g.resume(&nginx()));
        assert_eq!(run(&mut g, "web5", late, Outcome::Failed), None);
        assert_eq!(g.done_elsewhere(), 1);
    }

    #[test]
    fn refusals_are_counted_by_kind_and_spend_no_budget() {
        let t0 = Instant::now();
        let mut g = guards(GuardPolicy {
            max_in_flight: Amount::Count(100),
            error_budget: 1,
            host_cooldown: Duration::ZERO,
            ..GuardPolicy::default()
        });
        use crate::task::code;
        for (i, c) in [
            code::STALE,
            code::PAUSED,
            code::BUSY,
            code::NOT_PERMITTED,
            code::UNKNOWN_COMMAND,
            code::INVALID_REQUEST,
            code::INTERRUPTED,
            code::STALE,
        ]
        .into_iter()
        .enumerate()
        {
            let host = format!("web{i}");
            assert_eq!(g.decide(t0, &host, &nginx(), fine(100)), Verdict::Send);
            assert_eq!(g.finished(t0, &host, &nginx(), Outcome::of_code(c)), None);
        }
        for c in [code::ALREADY_RUNNING, code::REPEATED_RULE] {
            assert_eq!(Outcome::of_code(c), Outcome::DoneElsewhere);
        }
        assert!(!g.is_stopped(&nginx()));
        let state = &g.commands(t0)[0];
        assert_eq!(state.failures, 0);
        assert!(state.refused.contains(&(Refusal::Stale, 2)), "{state:?}");
        assert_eq!(state.refused.len(), 7);
        // A command that ran and failed, or timed out there, does spend it.
        for c in [3, 1, 255, code::TIMED_OUT, code::SPAWN_FAILED] {
            assert_eq!(Outcome::of_code(c), Outcome::Failed, "{c}");
        }
        assert_eq!(g.decide(t0, "web9", &nginx(), fine(100)), Verdict::Send);
        assert!(
            g.finished(t0, "web9", &nginx(), Outcome::of_code(3))
                .is_some()
        );
    }

    #[test]
    fn a_global_cap_holds_across_commands() {
        let now = Instant::now();
        let mut g = Guards::new(
            GuardPolicy {
                max_in_flight: Amount::Count(10),
                ..GuardPolicy::default()
            },
            HashMap::from([(
                CommandRef::new("db", "restart"),
                GuardPolicy {
                    max_in_flight: Amount::Count(1),
                    ..GuardPolicy::default()
                },
            )]),
            Some(Amount::Count(2)),
        );
        let f = fine(10);
        assert_eq!(g.decide(now, "web1", &nginx(), f), Verdict::Send);
        let db = CommandRef::new("db", "restart");
        assert_eq!(g.decide(now, "db1", &db, f), Verdict::Send);
        // The db command's own limit, then the global one.
        assert_eq!(
            g.decide(now, "db2", &db, f),
            Verdict::Held(HeldBack::Concurrency)
        );
        assert_eq!(
            g.decide(now, "web2", &nginx(), f),
            Verdict::Held(HeldBack::Concurrency)
        );
    }
}
