//! The answer to a `send-history` request: records as JSON lines,
//! bounded, an outcome the reader's key may not read withheld.

use crate::history::Record;

/// Bytes of history one answer carries at most: the newest records that
/// fit.
const MAX_HISTORY_ANSWER: usize = 256 * 1024;

/// History records as a result message: one JSON record per line, the
/// newest that fit in [`MAX_HISTORY_ANSWER`]; an outcome the reader's
/// `rights` do not cover withheld (`None`: no trusted keys, all of them).
pub(super) fn answer(records: &[Record], rights: Option<&crate::auth::Rights>) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut size = 0;
    for record in records.iter().rev() {
        let mut record = record.clone();
        if rights.is_some_and(|r| !r.reads_outcome_of(&record.kind, record.command())) {
            record.outcome = "(withheld: this key reads the outcomes of the commands it may run; history=all reads every outcome)".into();
        }
        let Ok(line) = serde_json::to_string(&record) else {
            continue;
        };
        size += line.len() + 1;
        if size > MAX_HISTORY_ANSWER {
            break;
        }
        lines.push(line);
    }
    lines.reverse();
    lines.join("\n")
}
