//! A stand-in for CloudNativePG's `manager wal-archive` and `manager wal-restore`, for the
//! end-to-end tests: PostgreSQL runs it as its `archive_command` and `restore_command`, and
//! it reaches the sidecar as CloudNativePG does, so a test exercises PostgreSQL → CNPG-I →
//! sidecar → `barman-cloud-*` → object store with only CloudNativePG replaced.
//!
//! ```text
//! cnpg_standin --socket SOCKET --cluster CLUSTER.json [--check-empty true|false] wal-archive PATH
//! cnpg_standin --socket SOCKET --cluster CLUSTER.json [--mode recovery|rewind]
//!              wal-restore WALNAME DESTINATION
//! ```
//!
//! What it does, as CloudNativePG: a fresh connection per call; the handshake of
//! `LoadPlugin` (GetPluginMetadata, GetPluginCapabilities, the GetCapabilities of each
//! advertised WAL, Backup, Metrics and RestoreJobHooks service, Probe); then one Archive or
//! Restore with the Cluster's JSON and the path made absolute against the working directory
//! (PostgreSQL runs its commands in PGDATA). Exit 0 on success; on any error it prints the gRPC code and
//! message on stderr (PostgreSQL copies it into its log) and exits 1, which PostgreSQL takes
//! as "not archived, retry" or "no such file" (CloudNativePG does the same for restore's
//! NOT_FOUND and OUT_OF_RANGE, after its in-tree fallback finds nothing configured).
//!
//! An example rather than a binary of the crate: `cargo test` builds examples, so the tests
//! find it beside their own executable, and it is never installed with `manager`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use cnpg_plugin::client::connect;
use cnpg_plugin::proto::backup::{BackupCapabilitiesRequest, backup_client::BackupClient};
use cnpg_plugin::proto::identity::{
    GetPluginCapabilitiesRequest, GetPluginMetadataRequest, ProbeRequest,
    identity_client::IdentityClient, plugin_capability,
};
use cnpg_plugin::proto::metrics::{MetricsCapabilitiesRequest, metrics_client::MetricsClient};
use cnpg_plugin::proto::wal::{
    RestoreJobHooksCapabilitiesRequest, WalArchiveRequest, WalCapabilitiesRequest,
    WalRestoreRequest, restore_job_hooks_client::RestoreJobHooksClient, wal_client::WalClient,
    wal_restore_request::Mode,
};
use tonic::transport::Channel;

/// The parsed command line.
struct Call {
    socket: PathBuf,
    cluster: PathBuf,
    check_empty: Option<bool>,
    mode: Mode,
    what: What,
}

enum What {
    Archive { path: String },
    Restore { name: String, destination: String },
}

fn usage() -> String {
    "usage: cnpg_standin --socket SOCKET --cluster FILE [--check-empty true|false] \
     [--mode recovery|rewind] (wal-archive PATH | wal-restore WALNAME DESTINATION)"
        .to_owned()
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Call, String> {
    let (mut socket, mut cluster, mut check_empty, mut mode) = (None, None, None, Mode::Recovery);
    let mut positionals = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(usage);
        match arg.as_str() {
            "--socket" => socket = Some(PathBuf::from(value()?)),
            "--cluster" => cluster = Some(PathBuf::from(value()?)),
            "--check-empty" => check_empty = Some(value()? == "true"),
            "--mode" => {
                mode = match value()?.as_str() {
                    "rewind" => Mode::Rewind,
                    _ => Mode::Recovery,
                }
            }
            _ => positionals.push(arg),
        }
    }
    let what = match positionals.as_slice() {
        [command, path] if command == "wal-archive" => What::Archive { path: path.clone() },
        [command, name, destination] if command == "wal-restore" => What::Restore {
            name: name.clone(),
            destination: destination.clone(),
        },
        _ => return Err(usage()),
    };
    Ok(Call {
        socket: socket.ok_or_else(usage)?,
        cluster: cluster.ok_or_else(usage)?,
        check_empty,
        mode,
        what,
    })
}

/// `path` made absolute against the working directory.
fn absolute(path: &str) -> Result<String, String> {
    let path = Path::new(path);
    if path.is_absolute() {
        return Ok(path.to_string_lossy().into_owned());
    }
    let cwd = std::env::current_dir().map_err(|e| format!("read the working directory: {e}"))?;
    Ok(cwd.join(path).to_string_lossy().into_owned())
}

/// `LoadPlugin`'s calls, in its order.
async fn handshake(channel: &Channel) -> Result<(), tonic::Status> {
    let mut identity = IdentityClient::new(channel.clone());
    identity
        .get_plugin_metadata(GetPluginMetadataRequest {})
        .await?;
    let capabilities = identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await?
        .into_inner()
        .capabilities;
    use plugin_capability::service::Type;
    for capability in capabilities {
        let Some(plugin_capability::Type::Service(service)) = capability.r#type else {
            continue;
        };
        match Type::try_from(service.r#type) {
            Ok(Type::WalService) => {
                WalClient::new(channel.clone())
                    .get_capabilities(WalCapabilitiesRequest {})
                    .await?;
            }
            Ok(Type::BackupService) => {
                BackupClient::new(channel.clone())
                    .get_capabilities(BackupCapabilitiesRequest {})
                    .await?;
            }
            Ok(Type::Metrics) => {
                MetricsClient::new(channel.clone())
                    .get_capabilities(MetricsCapabilitiesRequest {})
                    .await?;
            }
            Ok(Type::RestoreJob) => {
                RestoreJobHooksClient::new(channel.clone())
                    .get_capabilities(RestoreJobHooksCapabilitiesRequest {})
                    .await?;
            }
            _ => {}
        }
    }
    identity.probe(ProbeRequest {}).await?;
    Ok(())
}

async fn run(call: Call) -> Result<(), String> {
    let cluster_definition = std::fs::read(&call.cluster)
        .map_err(|e| format!("read the Cluster JSON {:?}: {e}", call.cluster))?;
    let channel = connect(&call.socket).await.map_err(|e| e.to_string())?;
    let status = |s: tonic::Status| format!("{:?}: {}", s.code(), s.message());
    handshake(&channel).await.map_err(status)?;
    let mut wal = WalClient::new(channel);
    match call.what {
        What::Archive { path } => {
            wal.archive(WalArchiveRequest {
                cluster_definition,
                source_file_name: absolute(&path)?,
                check_empty_wal_archive: call.check_empty,
                ..WalArchiveRequest::default()
            })
            .await
            .map_err(status)?;
        }
        What::Restore { name, destination } => {
            wal.restore(WalRestoreRequest {
                cluster_definition,
                source_wal_name: name,
                destination_file_name: absolute(&destination)?,
                mode: call.mode.into(),
                ..WalRestoreRequest::default()
            })
            .await
            .map_err(status)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let call = match parse(std::env::args().skip(1)) {
        Ok(call) => call,
        Err(message) => {
            eprintln!("cnpg_standin: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cnpg_standin: start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(call)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cnpg_standin: {message}");
            ExitCode::FAILURE
        }
    }
}
