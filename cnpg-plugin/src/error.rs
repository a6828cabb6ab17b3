//! The one error type of the `manager` binary. Each message is one line: what failed, the
//! quoted object, and what to do about it. `main` prints it once and exits 1, as the
//! plugin's `manager` does for any command error.

use std::io;
use std::path::PathBuf;

/// Why a `manager` command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting the role needs is not in the environment (or is empty, which the plugin
    /// treats the same way).
    #[error(
        "read required setting {setting:?}: environment variable {variable} is not set; \
         the plugin's operator sets it in the sidecar, export it when running by hand"
    )]
    MissingSetting {
        /// The plugin's own name for the setting (`cluster-name`).
        setting: &'static str,
        /// The variable it comes from (`CLUSTER_NAME`).
        variable: &'static str,
    },
    /// The log file of `--log-destination` cannot be opened.
    #[error("open log destination {path:?}: {source}; check the directory exists and is writable")]
    LogDestination {
        /// The path given.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The socket's directory, the stale socket or the socket itself cannot be set up.
    #[error("listen on socket {path:?}: {source}; check --plugin-path is a writable directory")]
    Listen {
        /// The socket path.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The gRPC server stopped with an error.
    #[error("serve gRPC on socket {path:?}: {source}")]
    Serve {
        /// The socket path.
        path: PathBuf,
        /// tonic's transport error.
        source: tonic::transport::Error,
    },
    /// A signal handler could not be installed.
    #[error("install the {signal} handler: {source}")]
    Signal {
        /// SIGTERM or SIGINT.
        signal: &'static str,
        /// What the OS said.
        source: io::Error,
    },
    /// The sidecar's socket cannot be reached.
    #[error(
        "connect to socket {path:?}: {source}; is `manager instance` running with the same --plugin-path?"
    )]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// tonic's transport error.
        source: tonic::transport::Error,
    },
    /// `grpc.health.v1.Health/Check` failed.
    #[error("check health on socket {path:?}: {status}")]
    HealthCheck {
        /// The socket path.
        path: PathBuf,
        /// The gRPC status of the failed call.
        status: Box<tonic::Status>,
    },
    /// A subcommand this build accepts but does not carry out yet.
    #[error("run `manager {command}`: not implemented yet in this sidecar (issue #15, part 2)")]
    NotImplemented {
        /// The subcommand.
        command: &'static str,
    },
    /// The async runtime could not start.
    #[error("start the async runtime: {0}")]
    Runtime(io::Error),
}
