//! Which rule files exist and whether they changed: the directory scan
//! behind hot reload, and the pure diff between two scans.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What tells one version of a file from the next without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    len: u64,
    mtime_ns: i128,
    inode: u64,
}

/// The `*.lua` files directly in a directory, with their fingerprints.
pub type Catalog = BTreeMap<PathBuf, Fingerprint>;

/// Scans `dir` (not recursively).
pub fn scan(dir: &Path) -> std::io::Result<Catalog> {
    let mut catalog = Catalog::new();
    for path in crate::rules::lua_files(dir)? {
        // A file removed between the listing and here is simply not there.
        // The entry itself, not what a link points to: nothing here opens
        // or follows it.
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            let fingerprint = Fingerprint {
                len: meta.len(),
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                inode: meta.ino(),
            };
            catalog.insert(path, fingerprint);
        }
    }
    Ok(catalog)
}

/// One difference between two scans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Added(PathBuf),
    Changed(PathBuf),
    Removed(PathBuf),
}

/// What happened between `before` and `after`, in path order.
pub fn diff(before: &Catalog, after: &Catalog) -> Vec<Change> {
    let mut changes = Vec::new();
    for (path, fp) in after {
        match before.get(path) {
            None => changes.push(Change::Added(path.clone())),
            Some(old) if old != fp => changes.push(Change::Changed(path.clone())),
            Some(_) => {}
        }
    }
    changes.extend(
        before
            .keys()
            .filter(|p| !after.contains_key(*p))
            .map(|p| Change::Removed(p.clone())),
    );
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_new_changed_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.lua"), dir.path().join("b.lua"));
        std::fs::write(&a, "return nil").unwrap();
        std::fs::write(&b, "return nil").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let first = scan(dir.path()).unwrap();
        assert_eq!(first.len(), 2);
        assert!(diff(&first, &first).is_empty());
        std::fs::write(&a, "return nil -- edited").unwrap();
        std::fs::remove_file(&b).unwrap();
        let c = dir.path().join("c.lua");
        std::fs::write(&c, "return nil").unwrap();
        let second = scan(dir.path()).unwrap();
        let changes = diff(&first, &second);
        assert_eq!(
            changes,
            vec![Change::Changed(a), Change::Added(c), Change::Removed(b)]
        );
    }
}
