//! `send-command` and `send-config`: publish a request, wait for the
//! host's result, print it.

use super::CliError;
use super::args::{BrokerArgs, SigningArgs};
use crate::remote::sender;
use crate::task::{TaskResult, code_name};
use std::path::Path;
use std::process::ExitCode;

/// `send-command SERVICE COMMAND`.
pub fn command(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    service: &str,
    command: &str,
) -> Result<ExitCode, CliError> {
    send(broker, signing, |task_id| {
        sender::command_message(task_id, service, command)
    })
}

/// `send-config FILE`.
pub fn config(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    file: &Path,
    dry_run: bool,
) -> Result<ExitCode, CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    send(broker, signing, |task_id| {
        sender::config_message(task_id, &text, dry_run)
    })
}

/// A request with a JSON body (`pause`, `resume`, ...) to one host.
pub fn ask(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    kind: crate::auth::BodyKind,
    body: serde_json::Value,
) -> Result<ExitCode, CliError> {
    send(broker, signing, |task_id| {
        sender::ask_message(task_id, kind, body)
    })
}

/// Sends the request `build` makes for a new task id (signed when asked)
/// and prints the result: exit 0 for result code 0, 1 for any other code;
/// no result is an error.
fn send(
    broker: &BrokerArgs,
    signing: &SigningArgs,
    build: impl FnOnce(u64) -> Vec<u8>,
) -> Result<ExitCode, CliError> {
    let task_id = sender::new_task_id();
    let payload = signing.apply(build(task_id)).map_err(CliError::Usage)?;
    let options = broker
        .for_one_host(signing.target())
        .map_err(CliError::Usage)?;
    let runtime = super::broker_runtime()?;
    let result = runtime
        .block_on(sender::send(&options, task_id, payload))
        .map_err(CliError::NoResult)?;
    print_result(&result, broker.json);
    Ok(if result.code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_result(result: &TaskResult, json: bool) {
    if json {
        say!("{}", serde_json::to_string(result).unwrap_or_default());
        return;
    }
    let name = code_name(result.code).map_or_else(String::new, |n| format!(", {n}"));
    say!(
        "task {} finished at {}: code {} ({:#x}{name})",
        result.task_id,
        result.timestamp,
        result.code,
        result.code
    );
    if !result.message.is_empty() {
        say!("{}", result.message);
    }
}
