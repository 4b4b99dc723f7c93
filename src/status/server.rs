//! The control socket: a Unix socket (mode 0600, so only collectd's user,
//! root on Debian, may ask) on which the plugin answers `status` with the
//! board's snapshot as JSON. One connection at a time, each bounded in
//! size and time, on a thread of its own: a client that stalls cannot
//! hold up collectd.

use super::Board;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest request line read (a pause with its reason).
const MAX_REQUEST: u64 = 4096;
/// How long a client may take to ask, and to take the answer.
const CLIENT_TIME: Duration = Duration::from_secs(2);

/// The running socket server; stops and removes the socket when dropped.
pub struct ControlServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The listening socket, to end its `accept` at shutdown without the
    /// file system (its file may be gone: a tmp cleaner, an operator).
    listener: UnixListener,
}

impl ControlServer {
    /// Binds `path` (replacing a stale socket, never another kind of file)
    /// and serves `board` on it.
    pub fn start(path: &Path, board: Arc<Board>) -> Result<ControlServer, String> {
        let shown = path.display();
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                std::fs::remove_file(path).map_err(|e| format!("{shown}: {e}"))?
            }
            Ok(_) => return Err(format!("{shown} exists and is not a socket; not replaced")),
            Err(_) => {}
        }
        // Bound under a temporary name and made private before it gets its
        // real name: nobody else can connect in between.
        let staging = path.with_extension(format!("new-{}", std::process::id()));
        let _ = std::fs::remove_file(&staging);
        let listener = UnixListener::bind(&staging).map_err(|e| format!("{shown}: {e}"))?;
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&staging, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&staging);
                format!("{shown}: {e}")
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let kept = listener.try_clone().map_err(|e| format!("{shown}: {e}"))?;
        let thread = std::thread::Builder::new()
            .name("monitor-control".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &board);
                    }
                }
            })
            .map_err(|e| format!("cannot start the control socket thread: {e}"))?;
        Ok(ControlServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
            listener: kept,
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept: shutting the socket down ends it with an error
        // on Linux, whatever became of the socket's file.
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.listener),
            nix::sys::socket::Shutdown::Both,
        );
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve(stream: UnixStream, board: &Board) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIME));
    let _ = stream.set_write_timeout(Some(CLIENT_TIME));
    let mut line = String::new();
    let Ok(reader) = stream.try_clone() else {
        return;
    };
    if BufReader::new(Read::take(reader, MAX_REQUEST))
        .read_line(&mut line)
        .is_err()
    {
        return;
    }
    let answer = match line.trim() {
        "status" => serde_json::to_vec(&board.snapshot()).unwrap_or_default(),
        other => match board.control(other) {
            Some(answer) => serde_json::json!({ "answer": answer })
                .to_string()
                .into_bytes(),
            None => format!(
                "{{\"error\": {}}}",
                serde_json::Value::from(format!("unknown request {other:?}; ask `status`"))
            )
            .into_bytes(),
        },
    };
    let mut stream = stream;
    let _ = stream.write_all(&answer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server stops though its socket file was removed under it (the
    /// wake-up cannot go through the file then).
    #[test]
    fn it_stops_when_its_socket_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let server = ControlServer::start(&path, Arc::new(Board::new("h"))).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (done, stopped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(server);
            let _ = done.send(());
        });
        // A deadline for failing, not a measure of speed.
        stopped
            .recv_timeout(Duration::from_secs(30))
            .expect("the server did not stop");
    }
}
