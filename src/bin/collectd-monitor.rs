//! The `collectd-monitor` command: tools for operators and rule authors
//! around the plugin. Thin by design: every subcommand calls library code
//! that the plugin runs too, so what the tool accepts, collectd accepts.

use clap::{Args, Parser, Subcommand};
use collectd_monitor::config;
use collectd_monitor::events::Event;
use collectd_monitor::lua::{Vm, VmLimits};
use collectd_monitor::mqtt::{Connection, MQTT_MAX_PACKET, TlsSettings, parse_host};
use collectd_monitor::remote::RemoteSettings;
use collectd_monitor::remote::sender::{self, SendOptions};
use collectd_monitor::rules::{HandlerKind, RuleSet, lua_files, parse_input_line};
use collectd_monitor::task::{TaskResult, code_name};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "collectd-monitor",
    version,
    about = "Fault recovery for collectd hosts"
)]
struct Cli {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Work with the plugin's config.json.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask a host's plugin to run a predefined command, and print its result.
    ///
    /// Exits 0 when the remote code is 0, 1 for any other code, 3 when no
    /// result arrived (broker unreachable, refused, or timeout).
    SendCommand {
        /// Service name in the host's config.json.
        service: String,
        /// Command name of that service.
        command: String,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
    },
    /// Push a new collectd.conf to a host, and print the result.
    ///
    /// The host validates it with collectd's own parser, backs up the old
    /// file, restarts collectd and rolls back if it does not come up. Exits
    /// like send-command.
    SendConfig {
        /// The new collectd.conf.
        file: PathBuf,
        #[command(flatten)]
        broker: Box<BrokerArgs>,
    },
    /// Run a Lua script in exactly the environment rule files get (same
    /// library, same limits, same sandbox process); `print` writes to
    /// stdout. Exits 1 when the script fails or hits a limit.
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
    RuleWorker {
        file: PathBuf,
        #[arg(long)]
        fuel: u64,
        /// Bytes.
        #[arg(long)]
        memory: usize,
        #[arg(long)]
        deadline_ms: u64,
    },
    /// Carry out a collectd.conf replacement (started by the plugin).
    #[command(hide = true)]
    ReplaceConfig {
        /// The job file the plugin wrote.
        #[arg(long)]
        job: PathBuf,
    },
}

/// The per-call limits of a rule file (`RuleFuel`, `RuleMemoryLimit`,
/// `RuleTimeout`), with the plugin's defaults.
#[derive(Args, Clone, Copy)]
struct LimitArgs {
    /// VM fuel per call.
    #[arg(long, default_value_t = VmLimits::DEFAULT_FUEL)]
    fuel: u64,
    /// MiB the Lua instance may hold.
    #[arg(long, default_value_t = VmLimits::DEFAULT_MEMORY_MIB)]
    memory_limit: u64,
    /// Milliseconds per call.
    #[arg(long, default_value_t = VmLimits::DEFAULT_TIMEOUT_MS)]
    timeout: u64,
}

impl LimitArgs {
    fn vm_limits(self) -> VmLimits {
        VmLimits::from_units(self.fuel, self.memory_limit, self.timeout)
    }
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Load rule files (or every *.lua of a directory) and list their
    /// handlers; exits 1 if any file fails to load.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Feed sample events to rule files and print which handlers fire; runs
    /// nothing. Without --input, checks the examples each file carries as
    /// its third return value.
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
    /// Validate a config.json exactly as the plugin would, and summarise it.
    Check {
        /// Path of the config.json to check.
        file: PathBuf,
    },
}

/// How to reach the broker, and the host's topics.
#[derive(Args)]
struct BrokerArgs {
    /// Broker, `host` or `host:port` (1883 by default, 8883 with --tls).
    #[arg(long)]
    host: String,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    password: Option<String>,
    /// Use TLS, verifying the broker against the system's CAs or --ca.
    #[arg(long)]
    tls: bool,
    /// PEM file of the CA that signed the broker's certificate (implies --tls).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// PEM client certificate (implies --tls; needs --key).
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// PEM key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Do not verify the broker's certificate (insecure).
    #[arg(long)]
    insecure: bool,
    /// The host's CommandTopic.
    #[arg(long)]
    topic: String,
    /// The host's CommandResultTopic.
    #[arg(long)]
    result_topic: String,
    /// MQTT QoS for the request and the result subscription.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Seconds to wait for the result.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Print the raw result message instead of a summary.
    #[arg(long)]
    json: bool,
}

impl BrokerArgs {
    fn options(&self) -> Result<SendOptions, String> {
        let tls = self.tls || self.ca.is_some() || self.cert.is_some() || self.insecure;
        let (host, port) = parse_host(&self.host, tls)?;
        let qos = collectd_monitor::mqtt::qos(self.qos);
        Ok(SendOptions {
            connection: Connection {
                host,
                port,
                client_id: format!(
                    "collectd-monitor-send-{}-{}",
                    std::process::id(),
                    fastrand::u32(..)
                ),
                credentials: self
                    .user
                    .clone()
                    .map(|u| (u, self.password.clone().unwrap_or_default())),
                tls: tls.then(|| TlsSettings {
                    ca_file: self.ca.clone(),
                    client_auth: self.cert.clone().zip(self.key.clone()),
                    skip_verify: self.insecure,
                }),
                keep_alive: Duration::from_secs(30),
                clean_session: true,
                manual_acks: false,
                max_packet: MQTT_MAX_PACKET,
            },
            topic: self.topic.clone(),
            result_topic: self.result_topic.clone(),
            qos,
            timeout: Duration::from_secs_f64(self.timeout.max(0.1)),
        })
    }
}

fn main() -> ExitCode {
    match Cli::parse().action {
        Action::Config(ConfigCommand::Check { file }) => config_check(&file),
        Action::SendCommand {
            service,
            command,
            broker,
        } => {
            let task_id = sender::new_task_id();
            let payload = sender::command_message(task_id, &service, &command);
            send(&broker, task_id, payload)
        }
        Action::SendConfig { file, broker } => match std::fs::read_to_string(&file) {
            Ok(text) => {
                let task_id = sender::new_task_id();
                send(&broker, task_id, sender::config_message(task_id, &text))
            }
            Err(e) => {
                eprintln!("error: {}: {e}", file.display());
                ExitCode::from(2)
            }
        },
        Action::Lua {
            file,
            limits,
            in_sandbox: false,
        } => run_lua_sandboxed(&file, limits),
        Action::Lua {
            file,
            limits,
            in_sandbox: true,
        } => run_lua(&file, limits.vm_limits()),
        Action::RuleWorker {
            file,
            fuel,
            memory,
            deadline_ms,
        } => {
            let limits = VmLimits {
                fuel,
                memory,
                deadline: Duration::from_millis(deadline_ms),
            };
            ExitCode::from(collectd_monitor::sandbox::worker::run(&file, limits, true))
        }
        Action::Rules(command) => {
            // The rule tools run files in this process: the watchdog ends
            // one stuck inside a builtin instead of hanging the terminal.
            collectd_monitor::sandbox::watchdog::start(
                VmLimits::default().deadline,
                "collectd-monitor rules".into(),
            );
            rules_command(command)
        }
        Action::ReplaceConfig { job } => {
            ExitCode::from(u8::try_from(collectd_monitor::reconfig::run_helper(&job)).unwrap_or(1))
        }
    }
}

fn rules_command(command: RulesCommand) -> ExitCode {
    match command {
        RulesCommand::Check { paths } => rules_check(&paths),
        RulesCommand::Test {
            paths,
            input: Some(input),
            config,
        } => rules_test(&paths, &input, config.as_deref()),
        RulesCommand::Test {
            paths, input: None, ..
        } => rules_examples(&paths),
    }
}

fn send(broker: &BrokerArgs, task_id: u64, payload: Vec<u8>) -> ExitCode {
    let outcome = broker.options().and_then(|options| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(sender::send(&options, task_id, payload))
    });
    match outcome {
        Ok(result) => {
            print_result(&result, broker.json);
            if result.code == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(3)
        }
    }
}

fn print_result(result: &TaskResult, json: bool) {
    if json {
        println!("{}", serde_json::to_string(result).unwrap_or_default());
        return;
    }
    let name = code_name(result.code).map_or_else(String::new, |n| format!(", {n}"));
    println!(
        "task {} finished at {}: code {} ({:#x}{name})",
        result.task_id, result.timestamp, result.code, result.code
    );
    if !result.message.is_empty() {
        println!("{}", result.message);
    }
}

fn config_check(file: &std::path::Path) -> ExitCode {
    match config::load_json_file(file) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                eprintln!("warning: {warning}");
            }
            let s = &loaded.settings;
            // The same checks the plugin makes before connecting, with a
            // placeholder for collectd's hostname.
            let remote = RemoteSettings::from_settings(s, "%{hostname}").and_then(|r| match r {
                Some(r) => r.connection.mqtt_options().map(|_| Some(r)),
                None => Ok(None),
            });
            let remote = match remote {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {}: remote commands: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            println!("{}: OK", file.display());
            match remote {
                Some(r) => {
                    let c = &r.connection;
                    let tls = match &c.tls {
                        Some(t) if t.skip_verify => {
                            "TLS without certificate verification (insecure)"
                        }
                        Some(_) => "TLS",
                        None => "plain TCP",
                    };
                    println!(
                        "  MQTT broker: {}:{} ({tls}, QoS {}, client id {})",
                        c.host,
                        c.port,
                        s.qos.level(),
                        c.client_id
                    );
                    println!(
                        "  commands on {}, results on {}",
                        r.command_topic, r.result_topic
                    );
                }
                None => println!("  MQTT broker: none (remote commands off)"),
            }
            if let Some(dir) = &s.local_monitor_config_dir {
                println!("  rule directory: {}", dir.display());
            }
            for (name, service) in &s.services {
                let commands: Vec<&str> = service.commands.keys().map(String::as_str).collect();
                println!("  service {name}: {}", commands.join(", "));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `lua --in-sandbox FILE` as a child and reports how it ended: a
/// script that kills its sandbox (say, with an allocation too large for
/// the address-space limit) ends in an error message, not a crash of ours.
fn run_lua_sandboxed(file: &std::path::Path, limits: LimitArgs) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let status = std::env::current_exe().and_then(|exe| {
        let mut command = std::process::Command::new(exe);
        collectd_monitor::sandbox::watchdog::tie_to_parent(&mut command);
        command
            .arg("lua")
            .arg("--in-sandbox")
            .arg(format!("--fuel={}", limits.fuel))
            .arg(format!("--memory-limit={}", limits.memory_limit))
            .arg(format!("--timeout={}", limits.timeout))
            .arg(file)
            .status()
    });
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            // The watchdog ended it (and said why): a failed script.
            (Some(collectd_monitor::sandbox::watchdog::EXIT_OVERRUN), _) => ExitCode::FAILURE,
            (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            (None, signal) => {
                let name = signal
                    .and_then(|s| nix::sys::signal::Signal::try_from(s).ok())
                    .map_or("unknown signal", |s| s.as_str());
                eprintln!(
                    "error: {}: the sandbox running the script was killed by {name} (a memory or stack limit, most likely)",
                    file.display()
                );
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: cannot start the sandbox process: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_lua(file: &std::path::Path, limits: VmLimits) -> ExitCode {
    let source = match std::fs::read(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    collectd_monitor::sandbox::watchdog::die_with_parent();
    collectd_monitor::sandbox::watchdog::start(limits.deadline, file.display().to_string());
    match collectd_monitor::sandbox::confine(limits.memory) {
        Ok(None) => {}
        Ok(Some(warning)) => eprintln!("warning: {warning}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let outcome = Vm::new(limits).and_then(|mut vm| {
        let result = vm.run_chunk(&file.display().to_string(), &source);
        for line in vm.take_printed() {
            println!("{line}");
        }
        result
    });
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.located(&file.display().to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Rule files named on the command line: files as given, directories
/// expanded to their *.lua files.
fn rule_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            out.extend(lua_files(p).map_err(|e| format!("{}: {e}", p.display()))?);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn load_rules(paths: &[PathBuf]) -> Result<(RuleSet, Vec<String>), String> {
    Ok(RuleSet::load_files(
        &rule_paths(paths)?,
        VmLimits::default(),
    ))
}

fn rules_check(paths: &[PathBuf]) -> ExitCode {
    let (set, errors) = match load_rules(paths) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for file in set.files() {
        println!("{}: OK", file.path().display());
        let source = std::fs::read_to_string(file.path()).unwrap_or_default();
        for warning in collectd_monitor::lua::unsupported_features(&source) {
            eprintln!("{}: warning: {warning}", file.path().display());
        }
        for kind in [HandlerKind::Metric, HandlerKind::Notification] {
            for name in file.handler_names(kind) {
                println!("  {name}");
            }
        }
    }
    for e in &errors {
        eprintln!("{e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn rules_test(
    paths: &[PathBuf],
    input: &std::path::Path,
    config: Option<&std::path::Path>,
) -> ExitCode {
    let services = match config.map(config::load_json_file).transpose() {
        Ok(loaded) => loaded.map(|l| l.settings.services),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (mut set, errors) = match load_rules(paths) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(input) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", input.display());
            return ExitCode::from(2);
        }
    };
    let mut failed = !errors.is_empty();
    for e in &errors {
        eprintln!("{e}");
    }
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let n = i + 1;
        let evaluation = match parse_input_line(line) {
            Ok(Event::Metric(m)) => set.on_metric(&m),
            Ok(Event::Notification(notification)) => set.on_notification(&notification),
            Err(e) => {
                eprintln!("line {n}: {e}");
                failed = true;
                continue;
            }
        };
        for (file, printed) in &evaluation.printed {
            println!("line {n}: {}: print: {printed}", file.display());
        }
        for f in &evaluation.fired {
            let known = services.as_ref().map(|s| {
                s.get(&f.service)
                    .map(|svc| svc.commands.contains_key(&f.command))
            });
            let note = match known {
                Some(None) => " (config.json has no such service)",
                Some(Some(false)) => " (config.json has no such command)",
                _ => "",
            };
            failed |= !note.is_empty();
            println!(
                "line {n}: {} -> {}/{}{note}",
                f.handler, f.service, f.command
            );
        }
        for h in &evaluation.held {
            println!("line {n}: {}: held: {}", h.handler, h.reason);
        }
        for e in &evaluation.errors {
            failed = true;
            println!("line {n}: {}: error: {}", e.handler, e.reason);
        }
        if evaluation.fired.is_empty() && evaluation.errors.is_empty() && evaluation.held.is_empty()
        {
            println!("line {n}: nothing fired");
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Runs each file's embedded examples in order, on a fresh state per file.
fn rules_examples(paths: &[PathBuf]) -> ExitCode {
    let files = match rule_paths(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    let mut checked = 0;
    for path in &files {
        let (mut set, errors) =
            RuleSet::load_files(std::slice::from_ref(path), VmLimits::default());
        for e in &errors {
            eprintln!("{e}");
            failed = true;
        }
        let examples = set
            .files()
            .first()
            .map(|f| f.examples().to_vec())
            .unwrap_or_default();
        for (i, example) in examples.iter().enumerate() {
            checked += 1;
            let evaluation = match &example.event {
                Event::Metric(m) => set.on_metric(m),
                Event::Notification(n) => set.on_notification(n),
            };
            let got: Vec<String> = evaluation
                .fired
                .iter()
                .map(|f| format!("{}/{}", f.service, f.command))
                .collect();
            let want = example.expect.as_ref().map(|(s, c)| format!("{s}/{c}"));
            let ok = evaluation.errors.is_empty()
                && match &want {
                    Some(w) => got.contains(w),
                    None => got.is_empty(),
                };
            let shown = |v: &[String]| {
                if v.is_empty() {
                    "nothing fires".to_string()
                } else {
                    v.join(", ")
                }
            };
            if ok {
                println!(
                    "{}: example {}: OK ({})",
                    path.display(),
                    i + 1,
                    shown(&got)
                );
            } else {
                failed = true;
                let errors: Vec<String> = evaluation
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.handler, e.reason))
                    .collect();
                println!(
                    "{}: example {}: FAILED: expected {}, got {}{}",
                    path.display(),
                    i + 1,
                    want.unwrap_or_else(|| "nothing to fire".into()),
                    shown(&got),
                    if errors.is_empty() {
                        String::new()
                    } else {
                        format!(" (errors: {})", errors.join("; "))
                    }
                );
            }
        }
    }
    if checked == 0 {
        eprintln!(
            "no examples found: rule files carry them as their third return value, or give --input"
        );
        return ExitCode::FAILURE;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
