//! The CLI's end of the control socket.

use super::Status;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Largest answer read (a status of a thousand rule files is far below).
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Asks the plugin listening on `socket` for its status.
pub fn fetch(socket: &Path, timeout: Duration) -> Result<Status, String> {
    let shown = socket.display();
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        format!("{shown}: {e} (is collectd running with the monitor plugin, and may this user open its control socket?)")
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.write_all(b"status\n"))
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| format!("{shown}: {e}"))?;
    serde_json::from_slice(&answer).map_err(|e| format!("{shown}: not a status answer: {e}"))
}
