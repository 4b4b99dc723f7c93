//! The per-value path: an owned value list offered to the rule engine, for
//! 1, 10 and 100 handlers, values that match and values that do not, with
//! and without a declarative `match` filter. Also the cost of handing a
//! value to the engine's queue, which is all collectd's write threads pay.

use collectd_monitor::collectd::{DsType, Metric, Value};
use collectd_monitor::events::{self, Event};
use collectd_monitor::lua::VmLimits;
use collectd_monitor::rules::RuleSet;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn metric(plugin: &str, type_instance: &str, value: f64) -> Metric {
    Metric {
        host: "web1".into(),
        plugin: plugin.into(),
        plugin_instance: String::new(),
        type_: plugin.into(),
        type_instance: type_instance.into(),
        time: 1_700_000_000.0,
        interval: 10.0,
        values: vec![Value::Gauge(value)],
        dsnames: vec!["value".into()],
        dstypes: vec![DsType::Gauge],
    }
}

/// A rule file with `n` handlers like the old example's, optionally with a
/// `match` filter.
fn rules(n: usize, filtered: bool) -> (tempfile::TempDir, RuleSet) {
    let dir = tempfile::tempdir().unwrap();
    let mut source = String::from("local H = {}\n");
    for i in 0..n {
        let body = "function(m) if m.plugin == 'memory' and m.type_instance == 'free' and m.values[1] <= 1e10 then return {service = 'hello', command = 'exec'} end end";
        if filtered {
            source.push_str(&format!(
                "H.h{i} = {{ match = {{ plugin = 'memory', type_instance = 'free' }}, handler = {body} }}\n"
            ));
        } else {
            source.push_str(&format!("H.h{i} = {body}\n"));
        }
    }
    source.push_str("return H\n");
    let path = dir.path().join("bench.lua");
    std::fs::write(&path, source).unwrap();
    let (set, errors) = RuleSet::load_files(&[path], VmLimits::default());
    assert!(errors.is_empty(), "{errors:?}");
    (dir, set)
}

fn evaluate(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_path/evaluate");
    for n in [1, 10, 100] {
        for filtered in [false, true] {
            let (_dir, mut set) = rules(n, filtered);
            let label = if filtered { "match_filter" } else { "plain" };
            let hit = metric("memory", "free", 5e9);
            group.bench_with_input(
                BenchmarkId::new(format!("{label}/matching"), n),
                &hit,
                |b, m| b.iter(|| black_box(set.on_metric(black_box(m)))),
            );
            let miss = metric("cpu", "idle", 42.0);
            group.bench_with_input(
                BenchmarkId::new(format!("{label}/not_matching"), n),
                &miss,
                |b, m| b.iter(|| black_box(set.on_metric(black_box(m)))),
            );
        }
    }
    group.finish();
}

fn enqueue(c: &mut Criterion) {
    let (queue, receiver) = events::bounded(1 << 16);
    let drain = std::thread::spawn(move || while receiver.recv().is_some() {});
    let m = metric("memory", "free", 5e9);
    c.bench_function("write_path/enqueue_owned_metric", |b| {
        b.iter(|| queue.offer(Event::Metric(black_box(m.clone()))))
    });
    queue.close();
    drain.join().unwrap();
}

criterion_group!(benches, evaluate, enqueue);
criterion_main!(benches);
