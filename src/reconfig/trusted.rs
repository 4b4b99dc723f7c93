//! Whether nobody but root (or the user collectd runs as) can change what a
//! path names, and where it really leads. A push policy that checks a path
//! and lets collectd open it later holds only if nobody else can swap a
//! link or a directory on the way in between: every directory the path
//! passes through, every link it follows (and the directory holding that
//! link), and the file itself must be writable by those users alone.

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// Links followed before a path is refused as a loop.
const MAX_LINKS: u32 = 32;

/// Mode bits: the sticky bit, and write for group and for others.
const STICKY: u32 = 0o1000;
const GROUP_WRITE: u32 = 0o020;
const OTHER_WRITE: u32 = 0o002;

/// Resolves `path` (absolute) to the path collectd will really open, every
/// link followed, and checks that nobody but root or this process's user
/// can change any step of the way. Components that do not exist yet end
/// the walk: they can be created only in the last, trusted directory.
pub fn resolve(path: &Path) -> Result<PathBuf, String> {
    if !path.is_absolute() {
        return Err(format!("{}: not an absolute path", path.display()));
    }
    let mut links = 0;
    walk(Path::new("/"), path, &mut links)
}

/// Walks `rest` from `base` (itself resolved and trusted).
fn walk(base: &Path, rest: &Path, links: &mut u32) -> Result<PathBuf, String> {
    let mut current = base.to_path_buf();
    let components: Vec<Component> = rest.components().collect();
    for (i, component) in components.iter().enumerate() {
        match component {
            Component::RootDir => current = PathBuf::from("/"),
            Component::CurDir => {}
            // `current` holds no link, so going up is going to its parent.
            Component::ParentDir => {
                current.pop();
            }
            Component::Prefix(_) => return Err("unsupported path prefix".into()),
            Component::Normal(name) => {
                let candidate = current.join(name);
                let meta = match std::fs::symlink_metadata(&candidate) {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        // Nothing more exists: the rest is created, if at
                        // all, inside `current`, which is trusted.
                        for c in &components[i..] {
                            current.push(c);
                        }
                        return Ok(current);
                    }
                    Err(e) => return Err(format!("{}: {e}", candidate.display())),
                };
                let last = i + 1 == components.len();
                if meta.file_type().is_symlink() {
                    *links += 1;
                    if *links > MAX_LINKS {
                        return Err(format!("{}: too many links", candidate.display()));
                    }
                    // The link's own owner matters in a sticky directory,
                    // where the owner of an entry may replace it.
                    owned_by_us(&candidate, meta.uid())?;
                    let target = std::fs::read_link(&candidate)
                        .map_err(|e| format!("{}: {e}", candidate.display()))?;
                    current = walk(&current, &target, links)?;
                } else {
                    owned_by_us(&candidate, meta.uid())?;
                    let mode = meta.mode();
                    let others = mode & OTHER_WRITE != 0;
                    let group = mode & GROUP_WRITE != 0 && meta.gid() != 0;
                    // A sticky, world-writable directory (/tmp) may be
                    // passed through: what the path names inside it is
                    // checked next, and only its owner may replace it.
                    let passable = meta.is_dir() && mode & STICKY != 0 && !last;
                    if (others || group) && !passable {
                        return Err(format!(
                            "{} is writable by others than root (mode {:o})",
                            candidate.display(),
                            mode & 0o7777
                        ));
                    }
                    current = candidate;
                }
            }
        }
    }
    Ok(current)
}

fn owned_by_us(path: &Path, uid: u32) -> Result<(), String> {
    if uid == 0 || uid == nix::unistd::Uid::effective().as_raw() {
        Ok(())
    } else {
        Err(format!(
            "{} belongs to uid {uid}, not to root or to collectd's user",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn links_are_followed_to_the_real_path() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        symlink(&real, dir.path().join("link")).unwrap();
        symlink("../real/x", real.join("rel")).unwrap();
        let root = resolve(dir.path()).unwrap();
        assert_eq!(
            resolve(&dir.path().join("link")).unwrap(),
            root.join("real")
        );
        // A relative link, and a name that does not exist yet.
        assert_eq!(
            resolve(&dir.path().join("link/rel/later")).unwrap(),
            root.join("real/x/later")
        );
        symlink("loop", dir.path().join("loop")).unwrap();
        let e = resolve(&dir.path().join("loop")).unwrap_err();
        assert!(e.contains("too many links"), "{e}");
    }

    #[test]
    fn a_directory_others_may_write_is_refused_unless_sticky_and_passed() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        mode(&open, 0o777);
        let e = resolve(&open.join("plugins")).unwrap_err();
        assert!(e.contains("writable by others"), "{e}");
        mode(&open, 0o1777);
        // Passing through a sticky directory is fine; naming it is not.
        assert!(resolve(&open.join("plugins")).is_ok());
        assert!(resolve(&open).is_err());
        let file = dir.path().join("types.db");
        std::fs::write(&file, "").unwrap();
        mode(&file, 0o666);
        assert!(resolve(&file).is_err());
        mode(&file, 0o644);
        assert!(resolve(&file).is_ok());
        assert!(resolve(Path::new("relative")).is_err());
    }
}
