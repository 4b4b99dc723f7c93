//! The `collectd-monitor` command line, one file per subcommand; the
//! binary only calls [`main`]. Each subcommand calls library code the
//! plugin runs too (so what the tool accepts, collectd accepts) and prints
//! what that code returns. Exit codes are decided in one place:
//! [`CliError::exit_code`].

/// `println!` for what a command prints on stdout: a reader that went away
/// (`collectd-monitor hosts --json | head -1`) ends the command quietly
/// instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::print_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` likewise.
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::cli::print_out(format_args!($($arg)*))
    };
}

mod args;
mod conf_page;
mod config;
mod docs;
mod fleet;
mod history;
mod hosts;
mod keygen;
mod lua;
mod pause;
mod push;
mod rules;
mod send;
mod status;

pub use args::{BrokerArgs, ConnectArgs, LimitArgs, RolloutArgs, SigningArgs, TargetArgs};

use crate::auth::BodyKind;
use crate::lua::VmLimits;
use crate::sandbox::WorkerArgs;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The command line.
#[derive(Parser)]
#[command(
    name = "collectd-monitor",
    version,
    about = "Fault recovery for collectd hosts"
)]
pub struct Cli {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Work with the plugin's config.json.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask a host's plugin to run a predefined command, and print its result.
    #[command(after_help = SEND_EXIT_CODES)]
    SendCommand {
        /// Service name in the host's config.json.
        service: String,
        /// Command name of that service.
        command: String,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        targets: Box<TargetArgs>,
    },
    /// Push a new collectd.conf to a host, and print the result.
    ///
    /// The host validates it with collectd's own parser, backs up the old
    /// file, restarts collectd and rolls back if it does not come up.
    #[command(after_help = SEND_EXIT_CODES)]
    SendConfig {
        /// The new collectd.conf (`%{hostname}` in it is each host's name).
        file: PathBuf,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        targets: Box<TargetArgs>,
        #[command(flatten)]
        rollout: RolloutArgs,
        /// Only check the config on the host and say what it would change;
        /// nothing is applied, collectd is not restarted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Pause automatic repairs for maintenance: decisions of the rules
    /// it covers are logged and counted as paused, not run (remote commands
    /// too with --remote); it ends by itself and survives a restart.
    Pause {
        #[command(flatten)]
        pause: pause::PauseArgs,
        /// The plugin's control socket (`ControlSocket`).
        #[arg(long, default_value = status::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// End a maintenance pause (the one with exactly this scope, or --all).
    Resume {
        #[command(flatten)]
        resume: pause::ResumeArgs,
        /// The plugin's control socket (`ControlSocket`).
        #[arg(long, default_value = status::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// `pause` on other hosts, over MQTT: a signed request (the key needs
    /// `pause=yes`) to one host or, with --hosts/--online, to many.
    SendPause {
        #[command(flatten)]
        pause: pause::PauseArgs,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        targets: Box<TargetArgs>,
    },
    /// What ran on this host, why and for whom: rule decisions, remote
    /// commands, config pushes, pauses and refused requests, oldest first.
    History {
        #[command(flatten)]
        query: history::QueryArgs,
        /// One JSON record per line.
        #[arg(long)]
        json: bool,
        /// The plugin's control socket (`ControlSocket`).
        #[arg(long, default_value = status::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// `history` of other hosts, over MQTT: a signed request (the key needs
    /// `history=yes`) to each of --hosts/--online; records by host.
    SendHistory {
        #[command(flatten)]
        query: history::QueryArgs,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        targets: Box<TargetArgs>,
    },
    /// Replace the rule files of a host, or of many with canaries and
    /// waves: checked there before anything changes, swapped in whole, the
    /// previous set kept (`--rollback` brings it back). The key needs
    /// `rules=yes` (`rules=all` with --config).
    SendRules {
        /// Rule files, or directories of them (their `*.lua` files); the
        /// host's rule directory then holds exactly these.
        #[arg(required_unless_present_any = ["rollback", "config"])]
        paths: Vec<PathBuf>,
        /// Replace config.json with this file too.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Put back the rule set (and config.json) the last push replaced.
        #[arg(long, conflicts_with_all = ["paths", "config"])]
        rollback: bool,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        targets: Box<TargetArgs>,
        #[command(flatten)]
        rollout: RolloutArgs,
    },
    /// Replace config.json of a host or many (the rule files stay): as
    /// `send-rules --config`; the key needs `rules=all`.
    SendMonitorConfig {
        /// The new config.json.
        file: PathBuf,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        targets: Box<TargetArgs>,
        #[command(flatten)]
        rollout: RolloutArgs,
    },
    /// `resume` on other hosts, over MQTT (the key needs `pause=yes`).
    SendResume {
        #[command(flatten)]
        resume: pause::ResumeArgs,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
        #[command(flatten)]
        signing: SigningArgs,
        #[command(flatten)]
        targets: Box<TargetArgs>,
    },
    /// Central rules on this collectd: resume the repairs of a command
    /// that the error budget stopped.
    #[command(subcommand)]
    Central(CentralCommand),
    /// Show what the running plugin is doing: each rule file and handler
    /// (decisions, errors, the series they acted on), the MQTT session,
    /// the commands running now, its counters.
    #[command(
        after_help = "Exit status: 0 printed, 2 bad arguments, 3 no answer (collectd not running, no control socket, or no permission to open it)."
    )]
    Status {
        /// The plugin's control socket (`ControlSocket`).
        #[arg(long, default_value = status::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Print the status as one JSON document.
        #[arg(long)]
        json: bool,
        /// Refresh every SECONDS until interrupted.
        #[arg(long, value_name = "SECONDS", value_parser = args::positive_seconds)]
        watch: Option<f64>,
    },
    /// List the fleet: every host whose plugin publishes its presence
    /// (`StatusTopic`), online or offline, with its version and settings.
    #[command(
        after_help = "Exit status: 0 listed (also when no host answered), 2 bad arguments, 3 the broker could not be reached or refused the subscription."
    )]
    Hosts {
        #[command(flatten)]
        connect: Box<ConnectArgs>,
        /// The hosts' StatusTopic as a filter, e.g. 'collectd/+/status'.
        #[arg(long)]
        status_topic: String,
        /// One JSON status message per host instead of a summary.
        #[arg(long)]
        json: bool,
        /// Print each host's result key as a line of a --host-keys file
        /// (`HOST ed25519 KEY`) instead of the summary.
        #[arg(long, conflicts_with = "json")]
        keys: bool,
        /// Seconds to wait for the broker.
        #[arg(long, default_value_t = 10.0, value_parser = args::positive_seconds)]
        timeout: f64,
    },
    /// Print the completion script for a shell (bash: save it as
    /// /usr/share/bash-completion/completions/collectd-monitor).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages (collectd-monitor.1 and one per subcommand)
    /// into a directory (for packaging).
    #[command(hide = true)]
    Man {
        #[arg(long)]
        out: PathBuf,
    },
    /// Make an Ed25519 key pair for signing requests: NAME.key (private,
    /// mode 0600; keep it on the controller) and NAME.pub (the line a
    /// host's TrustedKeys takes, with the key's rights added).
    #[command(
        after_help = "Exit status: 0 written, 1 a file could not be written (an existing key is never overwritten), 2 a bad name."
    )]
    Keygen {
        /// The key's name (letters, digits, '.', '_', '-').
        name: String,
        /// Directory to write the two files into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Run a Lua script in exactly the environment rule files get (same
    /// library, same limits, same sandbox process); `print` writes to
    /// stdout.
    #[command(
        after_help = "Exit status: 0 the script ran, 1 it failed or hit a limit, 2 it could not be read or the sandbox not started."
    )]
    Lua {
        /// The script.
        file: PathBuf,
        #[command(flatten)]
        limits: LimitArgs,
        /// Run in this process instead of a sandboxed child (internal).
        #[arg(long, hide = true)]
        in_sandbox: bool,
    },
    /// Check and try out rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Evaluate one rule file in a confined process (started by the plugin).
    #[command(hide = true)]
    RuleWorker(WorkerArgs),
    /// Carry out a collectd.conf replacement (started by the plugin).
    #[command(hide = true)]
    ReplaceConfig {
        /// The job file the plugin wrote.
        #[arg(long)]
        job: PathBuf,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load rule files (or every *.lua of a directory) and list their
    /// handlers and what the rule index calls each on.
    #[command(
        after_help = "Exit status: 0 every file loaded, 1 a file did not (or, with --strict, a warning), 2 a path could not be read."
    )]
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// A config.json: every service/command a handler spells out (as a
        /// string, or a local bound to one) must be in its Services.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Fail (exit 1) on warnings too: a misspelt field, a decision
        /// never returned.
        #[arg(long)]
        strict: bool,
        /// Print the findings as one JSON document (errors included).
        #[arg(long)]
        json: bool,
        /// Read the files, then confine this process as a rule worker is
        /// (the host checking a pushed set).
        #[arg(long, hide = true)]
        sandbox: bool,
        /// With --sandbox, the user to become once the files are read.
        #[arg(long, hide = true, requires = "sandbox")]
        sandbox_user: Option<String>,
    },
    /// Feed sample events to rule files and print which handlers fire; runs
    /// nothing. Without --input, checks the examples each file carries as
    /// its third return value. Every event is run twice, with the rule
    /// index and calling every handler; a difference is a failure.
    #[command(
        after_help = "Exit status: 0 all as expected, 1 a handler failed, an example or the rule index disagreed, or a decision names what config.json lacks, 2 an input could not be read."
    )]
    Test {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The events, one JSON object per line, with the handler-table fields.
        #[arg(long)]
        input: Option<PathBuf>,
        /// A config.json whose Services the decisions are checked against.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config.json, or a collectd.conf's <Plugin monitor>
    /// block with the config.json it names, exactly as the plugin would,
    /// and summarise it. A collectd.conf is read by collectd's own parser
    /// (a collectd started only for that, which exits before any plugin
    /// starts).
    #[command(
        after_help = "Exit status: 0 valid, 1 not valid, 2 the file, collectd or the plugin could not be used."
    )]
    Check {
        /// A config.json, or a collectd.conf.
        file: PathBuf,
        /// Print the findings as one JSON document.
        #[arg(long)]
        json: bool,
        /// The collectd program that parses a collectd.conf.
        #[arg(long, default_value = config::DEFAULT_COLLECTD)]
        collectd: PathBuf,
        /// This plugin's monitor.so (collectd loads it to parse); by
        /// default the one in the file's `PluginDir`, else
        /// /usr/lib/collectd/monitor.so.
        #[arg(long)]
        plugin: Option<PathBuf>,
    },
}

/// The exit status of `send-command` and `send-config`.
const SEND_EXIT_CODES: &str = "Exit status: 0 the host's result code is 0 (with --hosts, --hosts-file or --online: every host's), 1 any other result code (or a host failed, timed out or was not sent the request), 2 a usage error (a bad --host, an unreadable file), 3 no result arrived (broker unreachable or refusing, TLS failure, timeout).";

/// Why a subcommand did not succeed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The check or run failed (exit 1); what to say was printed already
    /// when the message is empty.
    #[error("{0}")]
    Failed(String),
    /// Input the command could not use: an unreadable file, a bad
    /// argument, a process that could not start (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No result came back from the host (exit 3).
    #[error("{0}")]
    NoResult(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Usage(_) => 2,
            CliError::NoResult(_) => 3,
        }
    }
}

/// The runtime the commands that talk to the broker run their exchange
/// on (one thread: the CLI waits for it anyway).
fn broker_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::NoResult(e.to_string()))
}

/// Parses the command line, runs the subcommand, prints an error and
/// returns the exit code.
/// `collectd-monitor central ...`.
#[derive(Subcommand, Debug)]
pub enum CentralCommand {
    /// Resume central repairs: of SERVICE/COMMAND after the error budget
    /// stopped them (as `status` shows), and the controller's pauses of
    /// that scope.
    Resume {
        #[command(flatten)]
        resume: pause::CentralResumeArgs,
        /// The plugin's control socket (`ControlSocket`).
        #[arg(long, default_value = status::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
    /// Pause central repairs, as a silence: decisions it covers are held
    /// back (`paused`); it ends by itself and survives a restart.
    Pause {
        #[command(flatten)]
        pause: pause::CentralPauseArgs,
        /// The plugin's control socket (`ControlSocket`).
        #[arg(long, default_value = status::DEFAULT_SOCKET)]
        socket: PathBuf,
    },
}

pub fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            if !e.to_string().is_empty() {
                eprintln!("error: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Writes to stdout; when the reader has closed the pipe, the command ends
/// at once with success, as the classic tools do.
pub fn print_out(text: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.action {
        Action::Config(ConfigCommand::Check {
            file,
            json,
            collectd,
            plugin,
        }) => config::check(&file, json, &collectd, plugin.as_deref()),
        Action::SendCommand {
            service,
            command,
            broker,
            signing,
            targets,
        } if targets.given() => fleet::command(&broker, &signing, &targets, &service, &command),
        Action::SendCommand {
            service,
            command,
            broker,
            signing,
            ..
        } => send::command(&broker, &signing, &service, &command),
        Action::SendConfig {
            file,
            broker,
            signing,
            targets,
            rollout,
            dry_run,
        } if targets.given() => fleet::config(
            &broker,
            &signing,
            &targets,
            rollout.stages(),
            &file,
            dry_run,
        ),
        Action::SendConfig {
            file,
            broker,
            signing,
            rollout,
            dry_run,
            ..
        } => match rollout.stages() {
            Some(_) => Err(CliError::Usage(
                "--canary and --wave-size need hosts: --hosts, --hosts-file or --online".into(),
            )),
            None => send::config(&broker, &signing, &file, dry_run),
        },
        Action::Keygen { name, dir } => keygen::run(&name, &dir),
        Action::Completions { shell } => docs::completions(shell),
        Action::Hosts {
            connect,
            status_topic,
            json,
            keys,
            timeout,
        } => hosts::run(
            &connect,
            &status_topic,
            hosts::Show::of(json, keys),
            timeout,
        ),
        Action::Man { out } => docs::man(&out),
        Action::Status {
            socket,
            json,
            watch,
        } => status::run(&socket, json, watch),
        Action::Pause { pause, socket } => pause::local(&socket, "pause", pause.body()?),
        Action::Resume { resume, socket } => pause::local(&socket, "resume", resume.body()),
        Action::SendPause {
            pause,
            broker,
            signing,
            targets,
        } => fleet::ask(
            &broker,
            &signing,
            &targets,
            None,
            BodyKind::Pause,
            pause.body()?,
        ),
        Action::History {
            query,
            json,
            socket,
        } => history::local(&socket, &query, json),
        Action::SendHistory {
            query,
            broker,
            signing,
            targets,
        } => history::remote(&broker, &signing, &targets, &query),
        Action::SendRules {
            paths,
            config,
            rollback,
            broker,
            signing,
            targets,
            rollout,
        } => {
            let (kind, body) = if rollback {
                (BodyKind::Rollback, serde_json::json!({}))
            } else {
                (
                    BodyKind::Rules,
                    push::body(&push::bundle(&paths, config.as_deref())?),
                )
            };
            fleet::ask(&broker, &signing, &targets, rollout.stages(), kind, body)
        }
        Action::SendMonitorConfig {
            file,
            broker,
            signing,
            targets,
            rollout,
        } => {
            let body = push::body(&push::bundle(&[], Some(&file))?);
            fleet::ask(
                &broker,
                &signing,
                &targets,
                rollout.stages(),
                BodyKind::Rules,
                body,
            )
        }
        Action::SendResume {
            resume,
            broker,
            signing,
            targets,
        } => fleet::ask(
            &broker,
            &signing,
            &targets,
            None,
            BodyKind::Resume,
            resume.body(),
        ),
        Action::Central(CentralCommand::Resume { resume, socket }) => {
            pause::local(&socket, "central-resume", resume.body())
        }
        Action::Central(CentralCommand::Pause { pause, socket }) => {
            pause::local(&socket, "central-pause", pause.body()?)
        }
        Action::Lua {
            file,
            limits,
            in_sandbox: false,
        } => lua::run_sandboxed(&file, limits),
        Action::Lua {
            file,
            limits,
            in_sandbox: true,
        } => lua::run_here(&file, limits.vm_limits()),
        Action::RuleWorker(args) => Ok(ExitCode::from(crate::sandbox::worker::run(
            &args.file,
            args.limits(),
            Some(args.user.as_deref()),
        ))),
        Action::Rules(command) => {
            // The rule tools run files in this process: the watchdog ends
            // one stuck inside a builtin instead of hanging the terminal.
            crate::sandbox::watchdog::start(
                VmLimits::default().deadline,
                "collectd-monitor rules".into(),
            );
            match command {
                RulesCommand::Check {
                    paths,
                    config,
                    strict,
                    json,
                    sandbox,
                    sandbox_user,
                } => {
                    let sandbox = sandbox.then_some(sandbox_user.as_deref());
                    rules::check(&paths, config.as_deref(), strict, json, sandbox)
                }
                RulesCommand::Test {
                    paths,
                    input: Some(input),
                    config,
                } => rules::test(&paths, &input, config.as_deref()),
                RulesCommand::Test {
                    paths, input: None, ..
                } => rules::examples(&paths),
            }
        }
        Action::ReplaceConfig { job } => Ok(ExitCode::from(
            u8::try_from(crate::reconfig::run_helper(&job)).unwrap_or(1),
        )),
    }
}
