//! Reading a file that a message, a setting or a rule directory names,
//! bounded before a byte is read: regular files only (a FIFO would block
//! the reader for ever, `/dev/zero` would fill its memory), no more than
//! a stated size, and, where the caller says so, no symbolic link. And
//! writing the plugin's own small files whole: synced, with their mode
//! from the start.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Whether a symbolic link as the last component is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Follow it (the target is still checked).
    Follow,
    /// Refuse it: the name must be the file itself.
    Refuse,
}

/// Opens `path` for reading without blocking on it, and checks that it is
/// a regular file of at most `max` bytes.
pub fn open_regular(path: &Path, max: u64, links: Links) -> io::Result<File> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) if links == Links::Refuse => io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a symbolic link, which is not followed here",
            ),
            _ => e,
        })?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what})"),
        ));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    Ok(file)
}

/// Reads all of `file`, at most `max` bytes (a file that grew after it
/// was opened is refused, not read on).
pub fn read_bounded(file: File, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// [`open_regular`] then [`read_bounded`].
pub fn read_regular(path: &Path, max: u64, links: Links) -> io::Result<Vec<u8>> {
    read_bounded(open_regular(path, max, links)?, max)
}

/// Writes `bytes` to `path`, which must not exist yet, with `mode` from
/// the start, synced to disk.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Puts `bytes` at `path` whole (mode 0600): written to a hidden file
/// beside it and renamed over it, so a reader, or a start after a crash,
/// finds the old file or the new one, never part of one.
pub fn replace_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    // Left by a crash between the two steps.
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, bytes, 0o600)?;
    std::fs::rename(&tmp, path)
}

fn too_large(max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("larger than {max} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_is_whole_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.json");
        replace_private(&file, b"one").unwrap();
        replace_private(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(write_new(&file, b"three", 0o600).is_err());
    }

    #[test]
    fn only_regular_files_within_the_bound_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, "hello").unwrap();
        assert_eq!(read_regular(&file, 5, Links::Refuse).unwrap(), b"hello");
        let e = read_regular(&file, 4, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("larger than 4 bytes"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 1 << 20, Links::Follow).unwrap_err();
        assert!(
            e.to_string().contains("not a regular file (a device)"),
            "{e}"
        );
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = read_regular(&fifo, 1 << 20, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("not a regular file (a FIFO)"), "{e}");
        let e = read_regular(dir.path(), 1 << 20, Links::Follow).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_regular(&link, 5, Links::Follow).unwrap(), b"hello");
        let e = read_regular(&link, 5, Links::Refuse).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
    }
}
