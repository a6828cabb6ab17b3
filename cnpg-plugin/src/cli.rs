//! The `manager` command line, with the plugin's subcommands and global flags, so the
//! plugin's operator can start our image exactly as it starts its own: `instance` in each
//! instance Pod, `restore` in the recovery Job, `healthcheck unix` as the startup probe.
//!
//! The global flags are those of CloudNativePG's machinery (`--log-level`,
//! `--log-destination`, `--log-field-level`, `--log-field-timestamp`) plus controller-runtime's
//! `--zap-*`, which are accepted and ignored: our lines are always the JSON the plugin writes
//! by default.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use crate::client::socket_path;
use crate::config::{Config, Role};
use crate::log::{Level, LogOptions, Logger};
use crate::{Error, healthcheck, server};

/// The plugin's `manager`.
#[derive(Debug, Parser)]
#[command(
    name = "manager",
    version,
    about = "Barman Cloud CNPG-I plugin sidecar (barman-cloud-rs)"
)]
pub struct Cli {
    #[command(flatten)]
    log: LogArgs,
    /// The directory of the plugin's Unix socket (shared with PostgreSQL's container).
    #[arg(long, global = true, value_name = "DIR", default_value = "/plugins")]
    plugin_path: PathBuf,
    #[command(subcommand)]
    command: Command,
}

/// CloudNativePG machinery's logging flags.
#[derive(Debug, Args)]
struct LogArgs {
    /// The desired log level, one of error, warning, info, debug and trace.
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Where the log stream will be written (default: stderr).
    #[arg(long, global = true, value_name = "PATH")]
    log_destination: Option<PathBuf>,
    /// JSON log field to report severity in (default: level).
    #[arg(long, global = true, value_name = "KEY")]
    log_field_level: Option<String>,
    /// JSON log field to report timestamp in (default: ts).
    #[arg(long, global = true, value_name = "KEY")]
    log_field_timestamp: Option<String>,
    #[command(flatten)]
    zap: ZapArgs,
}

/// controller-runtime's zap flags: accepted so an operator that passes them does not make the
/// sidecar fail, and ignored.
#[derive(Debug, Args)]
struct ZapArgs {
    #[arg(long, global = true, hide = true, num_args = 0..=1, default_missing_value = "true")]
    zap_devel: Option<String>,
    #[arg(long, global = true, hide = true)]
    zap_encoder: Option<String>,
    #[arg(long, global = true, hide = true)]
    zap_log_level: Option<String>,
    #[arg(long, global = true, hide = true)]
    zap_stacktrace_level: Option<String>,
    #[arg(long, global = true, hide = true)]
    zap_time_encoding: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Starts the Barman Cloud CNPG-I sidecar plugin of an instance Pod.
    Instance {
        /// Address of a pprof server (accepted for compatibility; there is none here).
        #[arg(long, value_name = "ADDRESS", default_value = "")]
        pprof_server: String,
    },
    /// Starts the sidecar of the recovery Job (a full or snapshot recovery bootstrap).
    Restore,
    /// Health check commands.
    Healthcheck {
        #[command(subcommand)]
        kind: HealthcheckKind,
    },
}

#[derive(Debug, Subcommand)]
enum HealthcheckKind {
    /// Checks `grpc.health.v1.Health` on the plugin's Unix socket.
    Unix,
}

/// Parses the command line, runs the subcommand and returns its exit code. An error is
/// printed once, on one line, prefixed `manager: `, and exits 1 as the plugin's `manager` does.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("manager: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<u8, Error> {
    let log = logger(&cli.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    match cli.command {
        Command::Instance { pprof_server } => {
            let log = log.named("instance");
            if !pprof_server.is_empty() {
                log.warning(
                    "--pprof-server is not supported by this sidecar, ignoring it",
                    &[("address", json!(pprof_server))],
                );
            }
            let config = Config::from_env(Role::Instance)?;
            runtime.block_on(async {
                let shutdown = shutdown_signal(log.clone())?;
                server::serve_instance(&cli.plugin_path, &config, &log, shutdown).await
            })?;
            Ok(0)
        }
        Command::Restore => {
            let log = log.named("restore");
            let config = Config::from_env(Role::Restore)?;
            runtime.block_on(async {
                let shutdown = shutdown_signal(log.clone())?;
                server::serve_restore(&cli.plugin_path, &config, &log, shutdown).await
            })?;
            Ok(0)
        }
        Command::Healthcheck {
            kind: HealthcheckKind::Unix,
        } => {
            let log = log.named("healthcheck");
            let socket = socket_path(&cli.plugin_path);
            let status = runtime
                .block_on(healthcheck::check(&socket))
                .inspect_err(|error| {
                    log.error(
                        "while executing the healthcheck call",
                        &[("error", json!(error.to_string()))],
                    );
                })?;
            let code = healthcheck::exit_code(status);
            if code == 0 {
                log.log(Level::Trace, "healthcheck response OK", &[]);
            } else {
                log.error(
                    "unexpected healthcheck status",
                    &[("status", json!(status.as_str_name()))],
                );
            }
            Ok(code)
        }
    }
}

/// The logger the flags ask for. An unknown level falls back to info with a line saying so,
/// as CloudNativePG's machinery does.
fn logger(args: &LogArgs) -> Result<Logger, Error> {
    let level = Level::parse(&args.log_level);
    let mut options = LogOptions {
        level: level.unwrap_or(Level::Info),
        ..LogOptions::default()
    };
    if let Some(key) = &args.log_field_level {
        options.level_key.clone_from(key);
    }
    if let Some(key) = &args.log_field_timestamp {
        options.time_key.clone_from(key);
    }
    let log = Logger::open(options, args.log_destination.as_deref())?;
    if level.is_none() {
        log.info(
            "Invalid log level, defaulting",
            &[
                ("level", json!(args.log_level)),
                ("default", json!(Level::Info.name())),
            ],
        );
    }
    Ok(log)
}

/// Completes on the first SIGTERM (the kubelet stopping the Pod) or SIGINT. The handlers are
/// installed before the socket exists, so a signal sent as soon as it appears is not lost.
fn shutdown_signal(log: Logger) -> Result<impl Future<Output = ()>, Error> {
    let install = |kind: SignalKind, name: &'static str| {
        signal(kind).map_err(|source| Error::Signal {
            signal: name,
            source,
        })
    };
    let mut terminate = install(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = install(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        log.info("Stopping on signal", &[("signal", json!(name))]);
    })
}
