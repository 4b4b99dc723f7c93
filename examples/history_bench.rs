//! The history's cost per record: records written one transaction each
//! (a quiet host: every record reaches the disk on its own) and in
//! batches (a flood: the writer thread takes what waits), into a store
//! bounded at 10 000 records, on this machine's disk.

use collectd_monitor::history::{Bounds, History, Query, Record};
use std::time::{Duration, Instant};

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bounds = Bounds {
        max_records: 10_000,
        max_age: Duration::from_secs(30 * 86_400),
    };
    let (history, _) = History::open(dir.path(), bounds).expect("open");
    let record = |i: usize| {
        Record::new("rule", "nginx/restart", "web.lua::metric::down")
            .task(i as u64)
            .on_series("web1/nginx/gauge-up")
            .result(0, "restarted nginx\n(output of the command)")
            .took(Duration::from_millis(120))
    };
    let wait_for = |n: usize| {
        let query = Query {
            limit: Some(1),
            ..Query::default()
        };
        while history
            .query(&query)
            .expect("query")
            .first()
            .and_then(|r| r.task_id)
            != Some(n as u64 - 1)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    // One at a time: each waits for the previous to be written.
    let quiet = 500;
    let started = Instant::now();
    for i in 0..quiet {
        assert!(history.record(record(i)));
        wait_for(i + 1);
    }
    let each = started.elapsed() / quiet as u32;
    println!("history: one record per transaction: {each:.2?} per record ({quiet} records)");
    // A flood: 20 000 records queued as fast as they come (past the 4 096
    // the queue holds, the rest are dropped and counted).
    let flood = 20_000;
    let started = Instant::now();
    for i in quiet..quiet + flood {
        history.record(record(i));
    }
    let queued = started.elapsed();
    // A last record, once there is room for it, tells when all is written.
    let last = quiet + flood;
    while !history.record(record(last)) {
        std::thread::sleep(Duration::from_micros(200));
    }
    wait_for(last + 1);
    let written = started.elapsed();
    println!(
        "history: flood of {flood}: queued in {queued:.2?} ({:.2?} per record on the caller's side), written in {written:.2?}, {} dropped",
        queued / flood as u32,
        history.dropped()
    );
    let size = std::fs::metadata(dir.path().join("history.redb")).map_or(0, |m| m.len());
    println!(
        "history: file {:.1} MiB with at most {} records",
        size as f64 / (1024.0 * 1024.0),
        bounds.max_records
    );
}
