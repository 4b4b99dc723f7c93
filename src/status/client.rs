//! The CLI's end of the control socket.

use super::Status;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// Largest answer read (a status of a thousand rule files is far below).
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Sends one request line to the plugin listening on `socket`; its answer.
fn request(socket: &Path, line: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let shown = socket.display();
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        format!("{shown}: {e} (is collectd running with the monitor plugin, and may this user open its control socket?)")
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.write_all(format!("{line}\n").as_bytes()))
        .map_err(|e| format!("{shown}: {e}"))?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(answer)
}

/// Asks the plugin listening on `socket` for its status.
pub fn fetch(socket: &Path, timeout: Duration) -> Result<Status, String> {
    let answer = request(socket, "status", timeout)?;
    serde_json::from_slice(&answer)
        .map_err(|e| format!("{}: not a status answer: {e}", socket.display()))
}

/// Sends a control request (`resume app/restart`); the plugin's answer, or
/// its error.
pub fn control(socket: &Path, line: &str, timeout: Duration) -> Result<String, String> {
    let answer: serde_json::Value = serde_json::from_slice(&request(socket, line, timeout)?)
        .map_err(|e| format!("{}: not an answer: {e}", socket.display()))?;
    match (answer["answer"].as_str(), answer["error"].as_str()) {
        (Some(text), _) => Ok(text.to_string()),
        (None, Some(error)) => Err(error.to_string()),
        _ => Err(format!("{}: not an answer", socket.display())),
    }
}
