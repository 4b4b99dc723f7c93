//! What travels on the pipes between the plugin and a rule worker.
//!
//! Plugin -> worker: frames holding a batch of events (the encoding is
//! `crate::events::batch`, encoded once per batch and shared by every
//! worker). Worker -> plugin: frames holding one JSON [`Report`] each; they
//! are rare (a decision, an error, a finished batch), so readability wins
//! there.
//!
//! A frame is a little-endian `u32` length followed by that many bytes.

use crate::lua::Limit;
use crate::rules::guard::Guard;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// Frames above this are refused: a corrupt length must not make the
/// reader allocate gigabytes.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(payload)?;
    w.flush()
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes"),
        ));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

/// What a worker tells the plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "report", rename_all = "snake_case")]
pub enum Report {
    /// The file loaded; events may follow. The guards say which events any
    /// of its handlers may act on (`None`: every event of that kind).
    Ready {
        metric: usize,
        notification: usize,
        #[serde(default)]
        metric_guard: Option<Guard>,
        #[serde(default)]
        notification_guard: Option<Guard>,
    },
    /// The file did not load (syntax error, error at top level, bad return
    /// values); the worker exits after this.
    LoadFailed { error: String },
    /// A handler asked for a recovery command.
    Fired {
        handler: String,
        service: String,
        command: String,
        series: String,
        /// The host the handler named, if any (central rules).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// The handler's own cooldown in seconds (its `cooldown` option).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cooldown: Option<f64>,
        /// The event's own time (seconds since the epoch, the sending
        /// host's clock): central rules derive their task id's window
        /// from it, the same at every controller.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time: Option<f64>,
        /// Why the rule itself holds the decision back (its `inhibited`
        /// field): counted and logged, not carried out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inhibited: Option<String>,
        /// A notification asked for instead of a command (`service` and
        /// `command` are then empty).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notify: Option<String>,
    },
    /// A handler's request was held back by its debounce options.
    Held { handler: String, reason: String },
    /// A handler failed or hit a limit; it runs again for the next event.
    Failed {
        handler: String,
        limit: Option<Limit>,
        reason: String,
        series: String,
    },
    /// A line the file printed.
    Printed { line: String },
    /// Every event of batch `seq` has been evaluated; `calls`: how often
    /// each handler was called for them.
    Done {
        seq: u64,
        events: u64,
        #[serde(default)]
        calls: Vec<(String, u64)>,
    },
    /// The worker is about to exit on its own, and why.
    Fatal { reason: String },
    /// Something the operator should know that does not stop the worker.
    Warning { message: String },
}

impl Report {
    /// The frame payload (JSON: reports are rare, readability wins).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a payload back; a worker that writes garbage is ended by the
    /// caller.
    pub fn decode(bytes: &[u8]) -> Result<Report, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("unreadable report from worker: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_absurd_lengths() {
        let mut pipe = Vec::new();
        write_frame(&mut pipe, b"abc").unwrap();
        write_frame(&mut pipe, b"").unwrap();
        let mut r = pipe.as_slice();
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"abc");
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"");
        assert!(read_frame(&mut r).unwrap().is_none());
        let huge = (u32::MAX).to_le_bytes();
        assert!(read_frame(&mut huge.as_slice()).is_err());
        let report = Report::Done {
            seq: 3,
            events: 9,
            calls: vec![("f.lua::metric::h".into(), 9)],
        };
        assert_eq!(Report::decode(&report.encode()).unwrap(), report);
    }
}
