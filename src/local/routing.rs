//! Which rule files an event goes to: each worker's file said, in its
//! Ready report, on which events its handlers may act (its routing); a
//! value list's verdict is decided once per series (identity) for every
//! file at once and remembered, so a batch costs one lookup per event.
//! Pure: the engine passes the batch's spans and the workers' routings.

use crate::events::batch::Span;
use crate::rules::guard::Subject;
use crate::sandbox::Routing;
use std::collections::HashMap;
use std::sync::Arc;

/// Series whose verdicts are remembered; past this many the memory starts
/// over (a stream of ever new series cannot grow it without bound).
const MAX_SERIES: usize = 65_536;

/// Series newly decided kept for [`Router::take_fresh`] at most, between
/// two takes.
const MAX_FRESH: usize = 1024;

/// Per-series verdicts for the current set of files.
#[derive(Default)]
pub struct Router {
    verdicts: HashMap<Box<[u8]>, Arc<[bool]>>,
    /// Value-list series decided since the last take, with their verdicts
    /// (what `status` shows of which series each file gets).
    fresh: Vec<(String, String, Arc<[bool]>)>,
    /// Silent series routed, and of those the ones kept from every file
    /// (never seen), since the last take.
    silences: (u64, u64),
}

impl Router {
    /// Forgets every verdict: the files, or what one of them acts on,
    /// changed.
    pub fn clear(&mut self) {
        self.verdicts.clear();
    }

    /// Silent series routed since the last call, and how many of them
    /// went to no file because their value lists were never seen.
    pub fn take_silences(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.silences)
    }

    /// The value-list series decided for the first time since the last
    /// call: `(plugin, series, which files want it)`.
    pub fn take_fresh(&mut self) -> Vec<(String, String, Arc<[bool]>)> {
        std::mem::take(&mut self.fresh)
    }

    /// For each span, which of the files (by their position in
    /// `routings`; `None`: a file that takes every event) want it. A
    /// silent series goes to every file (it is rare, and only files with
    /// `missing` handlers look at it); with `seen_only`, only when value
    /// lists of the series were routed here before.
    pub fn route(
        &mut self,
        spans: &[Span<'_>],
        routings: &[Option<Arc<Routing>>],
        seen_only: bool,
    ) -> Vec<Arc<[bool]>> {
        spans
            .iter()
            .map(|span| {
                if span.missing {
                    let seen = !seen_only || self.verdicts.contains_key(span.key);
                    self.silences.0 += 1;
                    self.silences.1 += u64::from(!seen);
                    return routings.iter().map(|_| seen).collect();
                }
                if span.severity.is_some() {
                    // Notifications are rare, and their severity is not
                    // part of the series: decided each time.
                    return decide(span, routings);
                }
                if let Some(v) = self.verdicts.get(span.key) {
                    return Arc::clone(v);
                }
                if self.verdicts.len() >= MAX_SERIES {
                    self.verdicts.clear();
                }
                let v = decide(span, routings);
                self.verdicts.insert(span.key.into(), Arc::clone(&v));
                if self.fresh.len() < MAX_FRESH {
                    self.fresh.push((
                        span.identity[1].to_string(),
                        crate::rules::series_name(span.identity),
                        Arc::clone(&v),
                    ));
                }
                v
            })
            .collect()
    }
}

fn decide(span: &Span<'_>, routings: &[Option<Arc<Routing>>]) -> Arc<[bool]> {
    let subject = Subject {
        identity: span.identity,
        severity: span.severity,
    };
    routings
        .iter()
        .map(|r| {
            let guard = r.as_ref().and_then(|r| match span.severity {
                Some(_) => r.notification.as_ref(),
                None => r.metric.as_ref(),
            });
            guard.is_none_or(|g| g.admits(&subject))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::guard::{Field, Guard};

    fn span<'a>(plugin: &'a str, key: &'a [u8], severity: Option<i64>) -> Span<'a> {
        Span {
            bytes: 0..0,
            identity: ["h", plugin, "", "", ""],
            key,
            severity,
            missing: false,
        }
    }

    #[test]
    fn each_file_gets_what_its_guard_admits_and_unrouted_files_everything() {
        let memory = Some(Arc::new(Routing {
            metric: Some(Guard::Eq(Field::Plugin, "memory".into())),
            notification: Some(Guard::Severity(1)),
        }));
        let routings = vec![memory, None];
        let mut router = Router::default();
        let spans = [
            span("memory", b"m", None),
            span("cpu", b"c", None),
            span("memory", b"m", Some(4)),
            span("memory", b"m", Some(1)),
        ];
        let wants: Vec<Vec<bool>> = router
            .route(&spans, &routings, false)
            .iter()
            .map(|w| w.to_vec())
            .collect();
        assert_eq!(
            wants,
            [
                vec![true, true],
                vec![false, true],
                vec![false, true],
                vec![true, true]
            ]
        );
        // Remembered per series: a second batch is a lookup.
        assert_eq!(router.verdicts.len(), 2);
        router.route(&spans[..1], &routings, false);
        assert_eq!(router.verdicts.len(), 2);
        router.clear();
        assert!(router.verdicts.is_empty());
    }

    #[test]
    fn a_silent_series_goes_to_every_file_and_with_seen_only_only_when_seen() {
        let memory = Some(Arc::new(Routing {
            metric: Some(Guard::Eq(Field::Plugin, "memory".into())),
            notification: None,
        }));
        let routings = vec![memory, None];
        let mut router = Router::default();
        let mut silent = span("cpu", b"c", None);
        silent.missing = true;
        let wants = |router: &mut Router, seen_only| {
            router.route(std::slice::from_ref(&silent), &routings, seen_only)[0].to_vec()
        };
        assert_eq!(wants(&mut router, false), vec![true, true]);
        // Never seen: a name anyone could have made up.
        assert_eq!(wants(&mut router, true), vec![false, false]);
        router.route(&[span("cpu", b"c", None)], &routings, true);
        assert_eq!(wants(&mut router, true), vec![true, true]);
        assert_eq!(router.take_silences(), (3, 1));
        assert_eq!(router.take_silences(), (0, 0));
    }

    #[test]
    fn the_memory_of_series_is_bounded() {
        let routings = vec![None];
        let mut router = Router::default();
        let keys: Vec<Vec<u8>> = (0..MAX_SERIES + 10)
            .map(|i| i.to_le_bytes().to_vec())
            .collect();
        for k in &keys {
            router.route(&[span("p", k, None)], &routings, false);
        }
        assert!(router.verdicts.len() <= MAX_SERIES);
    }
}
