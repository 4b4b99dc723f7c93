//! The per-value path: an owned value list offered to the rule engine, for
//! 1, 10 and 100 handlers, values that match and values that do not, with
//! and without a declarative `match` filter. Also the cost of handing a
//! value to the engine's queue, which is all collectd's write threads pay.

use collectd_monitor::events::batch as wire;
use collectd_monitor::events::{DsType, Metric, Value};
use collectd_monitor::events::{Event, EventQueue};
use collectd_monitor::lua::VmLimits;
use collectd_monitor::rules::RuleSet;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// What collectd's write threads pay: encode a value list into the queue.
/// (Encoded from an owned value list here; the plugin encodes straight from
/// collectd's struct.)
fn enqueue(c: &mut Criterion) {
    let queue = Arc::new(EventQueue::new(8 << 20));
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
        std::thread::spawn(move || {
            // As the engine does: take everything, then let events gather.
            while !stop.load(Ordering::Relaxed) {
                black_box(queue.take(Duration::from_millis(1)));
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let event = Event::Metric(metric("memory", "free", 5e9));
    c.bench_function("write_path/enqueue", |b| {
        b.iter(|| queue.offer_with(|buf| wire::push_event(buf, black_box(&event))))
    });
    stop.store(true, Ordering::Relaxed);
    drain.join().unwrap();
}

/// What a rule worker pays per event: decode its share of a batch of 1000
/// value lists and evaluate the old example's two handlers on each: for
/// values they cannot act on (the rule index skips the calls), for
/// `memory/free` values (the VM path: table, both handlers called; one
/// fires) and for NaN `memory/free` values (the VM path, nothing fires:
/// the side-by-side worst case).
fn worker(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.lua");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/rules/example.lua"),
        &path,
    )
    .unwrap();
    let (mut set, errors) = RuleSet::load_files(&[path], VmLimits::default());
    assert!(errors.is_empty(), "{errors:?}");
    /// Name, plugin, type instance, the i-th value.
    type Case = (&'static str, &'static str, &'static str, fn(u32) -> f64);
    let cases: [Case; 3] = [
        (
            "write_path/worker_batch_of_1000_example_rules",
            "cpu",
            "user",
            f64::from,
        ),
        (
            "write_path/worker_batch_of_1000_example_rules_acting",
            "memory",
            "free",
            f64::from,
        ),
        (
            "write_path/worker_batch_of_1000_example_rules_vm_nothing_fires",
            "memory",
            "free",
            |_| f64::NAN,
        ),
    ];
    for (name, plugin, type_instance, value) in cases {
        let mut batch = wire::BatchEncoder::new(0);
        for i in 0..1000 {
            // 50 series, as a host's memory plugin instances would repeat.
            let mut m = metric(plugin, type_instance, value(i));
            m.plugin_instance = format!("{}", i % 50);
            batch.push(&Event::Metric(m));
        }
        let frame = batch.finish();
        c.bench_function(name, |b| {
            let mut slot = Event::Metric(metric("", "", 0.0));
            b.iter(|| {
                let mut reader = wire::BatchReader::new(black_box(&frame[4..])).unwrap();
                while reader.next_into(&mut slot).unwrap() {
                    if let Event::Metric(m) = &slot {
                        black_box(set.on_metric(m));
                    }
                }
            })
        });
    }
}

/// What a central rule worker pays per evaluation as the fleet grows: a
/// stateful rule (load above 4 for 3 readings on the same host, a count
/// per host) on the `load` value lists (three values) of 100 and of
/// 10 000 hosts, 10 000 evaluations an iteration, in batches of 1 000.
fn worker_fleet(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("load_streak.lua");
    std::fs::write(
        &path,
        r#"local streak = {}
return { load_streak = function(m)
  if m.plugin ~= "load" then return end
  local n = 0
  if m.values[1] > 4 then n = (streak[m.host] or 0) + 1 end
  streak[m.host] = n
  if n >= 3 then return { service = "load", command = "shed" } end
end }"#,
    )
    .unwrap();
    // The same condition with the `monitor` helpers: a per-host streak
    // (monitor.stable) and the pool's share (monitor.fleet), as
    // rules/pool_load.lua.
    let pool = dir.path().join("pool_load.lua");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/rules/pool_load.lua"),
        &pool,
    )
    .unwrap();
    let load = |file: &std::path::Path| {
        let (set, errors) = RuleSet::load_files(&[file.to_path_buf()], VmLimits::default());
        assert!(errors.is_empty(), "{errors:?}");
        set
    };
    let mut group = c.benchmark_group("write_path/worker_fleet_load_streak_10000_evaluations");
    for (name, mut set, hosts) in [
        ("hand_written", load(&path), 100),
        ("hand_written", load(&path), 10_000),
        ("monitor_helpers", load(&pool), 10_000),
    ] {
        let frames: Vec<Vec<u8>> = (0..10)
            .map(|b| {
                let mut batch = wire::BatchEncoder::new(0);
                for i in 0..1000 {
                    let mut m = metric("load", "", 0.5);
                    m.host = format!("host{:05}", (b * 1000 + i) % hosts);
                    m.values = vec![Value::Gauge(0.5); 3];
                    m.dsnames = vec!["shortterm".into(), "midterm".into(), "longterm".into()];
                    m.dstypes = vec![DsType::Gauge; 3];
                    batch.push(&Event::Metric(m));
                }
                batch.finish()
            })
            .collect();
        group.bench_with_input(
            BenchmarkId::from_parameter(format!("{name}_{hosts}_hosts")),
            &frames,
            |b, frames| {
                let mut slot = Event::Metric(metric("", "", 0.0));
                b.iter(|| {
                    for frame in frames {
                        let mut reader = wire::BatchReader::new(black_box(&frame[4..])).unwrap();
                        while reader.next_into(&mut slot).unwrap() {
                            if let Event::Metric(m) = &slot {
                                black_box(set.on_metric(m));
                            }
                        }
                    }
                })
            },
        );
    }
    group.finish();
}

/// What the engine pays to route a batch of 100 value lists (50 series)
/// to 20 rule files: read the identities, look the series' verdicts up
/// (decided once), once per batch.
fn route(c: &mut Criterion) {
    use collectd_monitor::local::Router;
    use collectd_monitor::rules::guard::{Field, Guard};
    use collectd_monitor::sandbox::Routing;
    let mut batch = wire::BatchEncoder::new(0);
    for i in 0..100 {
        let plugin = ["memory", "cpu", "df", "load", "interface"][i % 5];
        batch.push(&Event::Metric(metric(plugin, &format!("x{}", i % 10), 1.0)));
    }
    let frame = batch.finish();
    let routings: Vec<Option<Arc<Routing>>> = (0..20)
        .map(|i| {
            Some(Arc::new(Routing {
                metric: Some(Guard::Eq(
                    Field::Plugin,
                    ["memory", "df", "load", "processes"][i % 4].into(),
                )),
                notification: None,
            }))
        })
        .collect();
    let mut router = Router::default();
    c.bench_function("write_path/route_batch_of_100_to_20_files", |b| {
        b.iter(|| {
            let spans = wire::scan(black_box(&frame[4..])).unwrap();
            black_box(router.route(&spans, &routings, false))
        })
    });
}

criterion_group!(benches, evaluate, enqueue, worker, worker_fleet, route);
criterion_main!(benches);
