//! The history's file: a redb database (`StateDir/history.redb`), records
//! by the microsecond they were written, bounded in count and age at every
//! write. Refused requests live in a table of their own with a share of
//! the bound, and a repeated refusal (a replayed request) adds to a count
//! instead of a record: whoever may publish cannot push out what ran.
//! The store heals: after an error it is opened again at the next use,
//! and a file that cannot be opened (damaged, truncated, a link) is moved
//! aside for inspection and a fresh one started.

use super::record::{Query, Record, micros};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");
const REFUSALS: TableDefinition<u64, &[u8]> = TableDefinition::new("refusals");

/// A repeated refusal counts into the last record of it within this long.
const REPEAT_WINDOW: Duration = Duration::from_secs(3600);

/// How much the history keeps.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// `HistoryMaxRecords`: the oldest go first past it (refusals have a
    /// tenth of it of their own, at least 10).
    pub max_records: u64,
    /// `HistoryMaxAge`: older records go at the next write.
    pub max_age: Duration,
}

impl Bounds {
    fn refusals(&self) -> u64 {
        (self.max_records / 10).max(10)
    }
}

/// Opens the database at a path (a test swaps in one that fails).
pub type Opener = Box<dyn Fn(&Path) -> Result<Database, String> + Send + Sync>;

/// The database, opened again after an error.
pub struct Store {
    path: PathBuf,
    bounds: Bounds,
    open: Opener,
    /// `None` after an error: the next use opens it again.
    db: Mutex<Option<Database>>,
    /// The last key written: keys stay unique and increasing even when
    /// records arrive within one microsecond or the clock steps back.
    last: Mutex<u64>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// redb on a file, mode 0600; a symbolic link is refused (the store is
/// the plugin's own file, never someone else's).
fn open_file(path: &Path) -> Result<Database, String> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "{}: is a symbolic link, which is not followed here",
            path.display()
        ));
    }
    let db = Database::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(db)
}

/// The newest key of a table, 0 when it has none.
fn newest(db: &Database, table: TableDefinition<u64, &[u8]>) -> Result<u64, String> {
    let read = db.begin_read().map_err(err)?;
    match read.open_table(table) {
        Ok(t) => Ok(t.last().map_err(err)?.map_or(0, |(k, _)| k.value())),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
        Err(e) => Err(err(e)),
    }
}

impl Store {
    /// Opens (or creates) the database at `path`. One that cannot be
    /// opened is moved aside and a fresh one made: what was done is the
    /// note (for a FAILURE notification). `Err` only when no store can be
    /// made there at all.
    pub fn open(path: &Path, bounds: Bounds) -> Result<(Store, Option<String>), String> {
        Self::open_with(path, bounds, Box::new(open_file))
    }

    /// The same with its own way of opening the file.
    pub fn open_with(
        path: &Path,
        bounds: Bounds,
        open: Opener,
    ) -> Result<(Store, Option<String>), String> {
        let (db, note) = match open(path) {
            Ok(db) => (db, None),
            Err(why) => {
                let aside =
                    path.with_extension(format!("redb.damaged-{}", micros(SystemTime::now())));
                std::fs::rename(path, &aside)
                    .map_err(|e| format!("{why}; and it cannot be moved aside: {e}"))?;
                let db = open(path)?;
                let note = format!(
                    "history: {why}; moved aside to {} and a new history started",
                    aside.display()
                );
                (db, Some(note))
            }
        };
        let last = newest(&db, RECORDS)?.max(newest(&db, REFUSALS)?);
        Ok((
            Store {
                path: path.to_path_buf(),
                bounds,
                open,
                db: Mutex::new(Some(db)),
                last: Mutex::new(last),
            },
            note,
        ))
    }

    /// Runs `work` on the database, opening it again first if an error
    /// closed it; an error closes it for the next use.
    fn with_db<T>(&self, work: impl FnOnce(&Database) -> Result<T, String>) -> Result<T, String> {
        let mut db = self.db.lock().map_err(err)?;
        if db.is_none() {
            *db = Some((self.open)(&self.path)?);
        }
        let result = db.as_ref().map_or_else(|| Err("not open".into()), work);
        if result.is_err() {
            // redb refuses everything after an I/O error ("Previous I/O
            // error occurred"): start again at the next use.
            *db = None;
        }
        result
    }

    /// Writes `records` in one transaction (one sync to disk), then drops
    /// the oldest beyond the bounds.
    pub fn append(&self, records: &[Record], now: SystemTime) -> Result<(), String> {
        let mut last = self.last.lock().map_err(err)?;
        let oldest = micros(now)
            .saturating_sub(u64::try_from(self.bounds.max_age.as_micros()).unwrap_or(u64::MAX));
        let repeat_since = micros(now).saturating_sub(REPEAT_WINDOW.as_micros() as u64);
        self.with_db(|db| {
            let write = db.begin_write().map_err(err)?;
            {
                let mut table = write.open_table(RECORDS).map_err(err)?;
                let mut refusals = write.open_table(REFUSALS).map_err(err)?;
                for record in records {
                    if record.is_refusal() {
                        let repeated = match refusals.last().map_err(err)? {
                            Some((k, v)) if k.value() >= repeat_since => {
                                serde_json::from_slice::<Record>(v.value())
                                    .ok()
                                    .filter(|r| r.repeats(record))
                                    .map(|r| (k.value(), r))
                            }
                            _ => None,
                        };
                        if let Some((key, mut earlier)) = repeated {
                            earlier.count = Some(earlier.count.unwrap_or(1) + 1);
                            earlier.at.clone_from(&record.at);
                            let value = serde_json::to_vec(&earlier).map_err(err)?;
                            refusals.insert(key, value.as_slice()).map_err(err)?;
                            continue;
                        }
                    }
                    let key = micros(now).max(*last + 1);
                    let value = serde_json::to_vec(record).map_err(err)?;
                    let into = if record.is_refusal() {
                        &mut refusals
                    } else {
                        &mut table
                    };
                    into.insert(key, value.as_slice()).map_err(err)?;
                    *last = key;
                }
                for (t, bound) in [
                    (&mut table, self.bounds.max_records),
                    (&mut refusals, self.bounds.refusals()),
                ] {
                    let excess = t.len().map_err(err)?.saturating_sub(bound);
                    for _ in 0..excess {
                        t.pop_first().map_err(err)?;
                    }
                    t.retain_in(..oldest, |_, _| false).map_err(err)?;
                }
            }
            write.commit().map_err(err)
        })
    }

    /// The newest records `query` wants, oldest first.
    pub fn query(&self, query: &Query, now: SystemTime) -> Result<Vec<Record>, String> {
        self.with_db(|db| {
            let read = db.begin_read().map_err(err)?;
            let mut found: Vec<(u64, Record)> = Vec::new();
            for table in [RECORDS, REFUSALS] {
                let table = match read.open_table(table) {
                    Ok(table) => table,
                    Err(redb::TableError::TableDoesNotExist(_)) => continue,
                    Err(e) => return Err(err(e)),
                };
                let mut taken = 0;
                for entry in table.range(query.oldest(now)..).map_err(err)?.rev() {
                    let (key, value) = entry.map_err(err)?;
                    // A record this version cannot read is skipped.
                    let Ok(record) = serde_json::from_slice::<Record>(value.value()) else {
                        continue;
                    };
                    if query.wants(&record) {
                        found.push((key.value(), record));
                        taken += 1;
                        if taken == query.limit() {
                            break;
                        }
                    }
                }
            }
            found.sort_by_key(|(k, _)| *k);
            let skip = found.len().saturating_sub(query.limit());
            Ok(found.into_iter().skip(skip).map(|(_, r)| r).collect())
        })
    }

    /// Records kept now, refusals included.
    #[cfg(test)]
    pub fn len(&self) -> Result<u64, String> {
        self.with_db(|db| {
            let read = db.begin_read().map_err(err)?;
            let mut n = 0;
            for table in [RECORDS, REFUSALS] {
                match read.open_table(table) {
                    Ok(t) => n += t.len().map_err(err)?,
                    Err(redb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    fn store(dir: &Path, max_records: u64, max_age: u64) -> Store {
        Store::open(
            &dir.join("history.redb"),
            Bounds {
                max_records,
                max_age: Duration::from_secs(max_age),
            },
        )
        .unwrap()
        .0
    }

    #[test]
    fn keeps_the_newest_within_count_and_age_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        {
            let s = store(dir.path(), 5, 3600);
            let batch: Vec<Record> = (0..8)
                .map(|i| Record::new("rule", &format!("svc{i}/restart"), "r.lua::metric::h"))
                .collect();
            s.append(&batch, t0).unwrap();
            assert_eq!(s.len().unwrap(), 5);
        }
        let s = store(dir.path(), 5, 3600);
        let all = s.query(&Query::default(), t0).unwrap();
        let names: Vec<&str> = all.iter().map(|r| r.what.as_str()).collect();
        assert_eq!(
            names,
            [
                "svc3/restart",
                "svc4/restart",
                "svc5/restart",
                "svc6/restart",
                "svc7/restart"
            ]
        );
        let one = Query {
            service: Some("svc6".into()),
            ..Query::default()
        };
        assert_eq!(s.query(&one, t0).unwrap().len(), 1);
        let newest = Query {
            limit: Some(2),
            ..Query::default()
        };
        assert_eq!(s.query(&newest, t0).unwrap()[1].what, "svc7/restart");
        // Two hours later, the next write drops everything older than an hour.
        let later = t0 + Duration::from_secs(7200);
        s.append(&[Record::new("remote", "a/b", "key ops")], later)
            .unwrap();
        assert_eq!(s.len().unwrap(), 1);
        let recent = Query {
            since_secs: Some(60),
            ..Query::default()
        };
        assert_eq!(s.query(&recent, later).unwrap().len(), 1);
        assert!(
            s.query(&recent, later + Duration::from_secs(120))
                .unwrap()
                .is_empty()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("history.redb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn refusals_cannot_push_out_what_ran_and_a_replay_is_one_counted_record() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::now();
        let s = store(dir.path(), 20, 3600);
        s.append(
            &[Record::new("remote", "hello/exec", "key ops").result(0, "hi")],
            t0,
        )
        .unwrap();
        let replay = Record::new("refused", "hello/exec", "key ops")
            .task(42)
            .result(0x1006, "stale");
        let replays: Vec<Record> = (0..2500).map(|_| replay.clone()).collect();
        s.append(&replays, t0).unwrap();
        let all = s.query(&Query::default(), t0).unwrap();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[1].count, Some(2500));
        // Many different refusals: at most their share, the run kept.
        let many: Vec<Record> = (0..500)
            .map(|i| {
                Record::new("refused", "hello/exec", "key ops")
                    .task(i)
                    .result(0x1006, "stale")
            })
            .collect();
        s.append(&many, t0).unwrap();
        let all = s
            .query(
                &Query {
                    limit: Some(1000),
                    ..Query::default()
                },
                t0,
            )
            .unwrap();
        assert_eq!(all.len(), 11, "{}", all.len());
        assert!(all.iter().any(|r| r.kind == "remote"));
    }

    /// A file that fails its writes while `failing` is set.
    #[derive(Debug)]
    struct Flaky {
        file: std::fs::File,
        failing: Arc<AtomicBool>,
    }

    impl redb::StorageBackend for Flaky {
        fn len(&self) -> Result<u64, redb::BackendError> {
            Ok(self.file.metadata()?.len())
        }
        fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), redb::BackendError> {
            use std::os::unix::fs::FileExt;
            Ok(self.file.read_exact_at(out, offset)?)
        }
        fn set_len(&self, len: u64) -> Result<(), redb::BackendError> {
            Ok(self.file.set_len(len)?)
        }
        fn sync_data(&self) -> Result<(), redb::BackendError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("No space left on device").into());
            }
            Ok(self.file.sync_data()?)
        }
        fn write(&self, offset: u64, data: &[u8]) -> Result<(), redb::BackendError> {
            use std::os::unix::fs::FileExt;
            if self.failing.load(Ordering::SeqCst) {
                return Err(std::io::Error::other("No space left on device").into());
            }
            Ok(self.file.write_all_at(data, offset)?)
        }
    }

    #[test]
    fn after_an_io_error_the_store_opens_again_at_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failing);
        let open: Opener = Box::new(move |path: &Path| {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map_err(err)?;
            let backend = Flaky {
                file,
                failing: Arc::clone(&flag),
            };
            redb::Builder::new()
                .create_with_backend(backend)
                .map_err(err)
        });
        let bounds = Bounds {
            max_records: 100,
            max_age: Duration::from_secs(3600),
        };
        let (s, note) = Store::open_with(&dir.path().join("history.redb"), bounds, open).unwrap();
        assert_eq!(note, None);
        let t0 = SystemTime::now();
        let record = |what: &str| Record::new("rule", what, "r.lua::metric::h");
        s.append(&[record("a/b")], t0).unwrap();
        failing.store(true, Ordering::SeqCst);
        assert!(s.append(&[record("c/d")], t0).is_err());
        assert!(s.append(&[record("c/d")], t0).is_err());
        // Room again: the next write works, without a restart.
        failing.store(false, Ordering::SeqCst);
        s.append(&[record("e/f")], t0).unwrap();
        let whats: Vec<String> = s
            .query(&Query::default(), t0)
            .unwrap()
            .into_iter()
            .map(|r| r.what)
            .collect();
        assert_eq!(whats, ["a/b", "e/f"]);
    }

    #[test]
    fn a_damaged_file_or_a_link_is_moved_aside_and_a_new_one_started() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.redb");
        let bounds = Bounds {
            max_records: 10,
            max_age: Duration::from_secs(3600),
        };
        std::fs::write(&path, b"garbage, not a database").unwrap();
        let (s, note) = Store::open(&path, bounds).unwrap();
        let note = note.unwrap();
        assert!(note.contains("moved aside"), "{note}");
        s.append(&[Record::new("rule", "a/b", "x")], SystemTime::now())
            .unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains("damaged"))
            .collect();
        assert_eq!(aside.len(), 1);
        drop(s);
        // A dangling link: not followed, its target never made.
        let target = dir.path().join("elsewhere");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let (_s, note) = Store::open(&path, bounds).unwrap();
        assert!(note.unwrap().contains("symbolic link"));
        assert!(!target.exists());
        assert!(
            !std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
