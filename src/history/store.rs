//! The history's file: a redb database (`StateDir/history.redb`), one
//! table of records by the microsecond they were written, bounded in
//! count and age at every write.

use super::record::{Query, Record, micros};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::time::{Duration, SystemTime};

const RECORDS: TableDefinition<u64, &[u8]> = TableDefinition::new("records");

/// How much the history keeps.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// `HistoryMaxRecords`: the oldest go first past it.
    pub max_records: u64,
    /// `HistoryMaxAge`: older records go at the next write.
    pub max_age: Duration,
}

/// The open database.
pub struct Store {
    db: Database,
    bounds: Bounds,
    /// The last key written: keys stay unique and increasing even when
    /// records arrive within one microsecond or the clock steps back.
    last: std::sync::Mutex<u64>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Store {
    /// Opens (or creates) the database at `path`, mode 0600.
    pub fn open(path: &Path, bounds: Bounds) -> Result<Store, String> {
        let db = Database::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let last = {
            let read = db.begin_read().map_err(err)?;
            match read.open_table(RECORDS) {
                Ok(table) => table.last().map_err(err)?.map_or(0, |(k, _)| k.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => 0,
                Err(e) => return Err(err(e)),
            }
        };
        Ok(Store {
            db,
            bounds,
            last: std::sync::Mutex::new(last),
        })
    }

    /// Writes `records` in one transaction (one sync to disk), then drops
    /// the oldest beyond the bounds.
    pub fn append(&self, records: &[Record], now: SystemTime) -> Result<(), String> {
        let mut last = self.last.lock().map_err(err)?;
        let write = self.db.begin_write().map_err(err)?;
        {
            let mut table = write.open_table(RECORDS).map_err(err)?;
            for record in records {
                let key = micros(now).max(*last + 1);
                let value = serde_json::to_vec(record).map_err(err)?;
                table.insert(key, value.as_slice()).map_err(err)?;
                *last = key;
            }
            let oldest = micros(now)
                .saturating_sub(u64::try_from(self.bounds.max_age.as_micros()).unwrap_or(u64::MAX));
            let excess = table
                .len()
                .map_err(err)?
                .saturating_sub(self.bounds.max_records);
            for _ in 0..excess {
                table.pop_first().map_err(err)?;
            }
            table.retain_in(..oldest, |_, _| false).map_err(err)?;
        }
        write.commit().map_err(err)
    }

    /// The newest records `query` wants, oldest first.
    pub fn query(&self, query: &Query, now: SystemTime) -> Result<Vec<Record>, String> {
        let read = self.db.begin_read().map_err(err)?;
        let table = match read.open_table(RECORDS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut found = Vec::new();
        for entry in table.range(query.oldest(now)..).map_err(err)?.rev() {
            let (_, value) = entry.map_err(err)?;
            // A record this version cannot read is skipped, not fatal.
            let Ok(record) = serde_json::from_slice::<Record>(value.value()) else {
                continue;
            };
            if query.wants(&record) {
                found.push(record);
                if found.len() == query.limit() {
                    break;
                }
            }
        }
        found.reverse();
        Ok(found)
    }

    /// Records kept now.
    #[cfg(test)]
    pub fn len(&self) -> Result<u64, String> {
        let read = self.db.begin_read().map_err(err)?;
        match read.open_table(RECORDS) {
            Ok(table) => table.len().map_err(err),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, max_records: u64, max_age: u64) -> Store {
        Store::open(
            &dir.join("history.redb"),
            Bounds {
                max_records,
                max_age: Duration::from_secs(max_age),
            },
        )
        .unwrap()
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
}
