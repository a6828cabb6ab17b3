//! The gRPC server of both roles on the Unix socket `<plugin-path>/<plugin name>`: the
//! instance role (Identity, WAL, Backup, Metrics) and the restore role of the recovery Job
//! (Identity, WAL, RestoreJobHooks), each with `grpc.health.v1.Health`. The socket, the
//! health service and the shutdown are the same for both; only the services differ.
//!
//! The socket lives in the `plugins` emptyDir shared with PostgreSQL's container. A socket
//! left by a previous run of the sidecar (a restart keeps the emptyDir) is removed first, and
//! ours is removed when we stop, so CloudNativePG never finds a dead entry.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Server;
use tonic::transport::server::Router;

use crate::Error;
use crate::client::socket_path;
use crate::config::{Config, Role};
use crate::instance::Instance;
use crate::log::Logger;
use crate::metadata::{PLUGIN_NAME, PLUGIN_VERSION};
use crate::proto::{backup, identity, metrics, wal};
use crate::{retention, services};

/// How long calls still running at a SIGTERM may go on before their connections are closed.
/// When the kubelet stops a native sidecar, PostgreSQL's container has already exited, so
/// nothing should be running by then.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Creates `plugin_path` if missing, removes a stale socket, and listens on a new one.
///
/// # Errors
/// [`Error::Listen`] when the directory, the removal or the bind fails.
pub fn bind(plugin_path: &Path, log: &Logger) -> Result<(PathBuf, UnixListener), Error> {
    let socket = socket_path(plugin_path);
    let listen_error = |source| Error::Listen {
        path: socket.clone(),
        source,
    };
    std::fs::create_dir_all(plugin_path).map_err(listen_error)?;
    if remove_socket(&socket).map_err(listen_error)? {
        log.info("Removed a stale socket", &[("socket", json!(socket))]);
    }
    let listener = UnixListener::bind(&socket).map_err(listen_error)?;
    Ok((socket, listener))
}

/// Removes the socket file; false when there was none.
fn remove_socket(socket: &Path) -> io::Result<bool> {
    match std::fs::remove_file(socket) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Serves Identity, WAL, Backup, Metrics and `grpc.health.v1.Health` (SERVING) on the
/// socket in `plugin_path`, with the catalog maintenance loop ([`retention::run`]) in the
/// background, until `shutdown` completes, then lets running calls finish (for
/// at most [`SHUTDOWN_GRACE`]) and removes the socket.
///
/// # Errors
/// [`Error::Listen`] when the socket cannot be set up, [`Error::Serve`] when the server fails.
pub async fn serve_instance(
    plugin_path: &Path,
    config: &Config,
    log: &Logger,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    serve(
        plugin_path,
        config,
        log,
        Role::Instance,
        shutdown,
        |instance| {
            Server::builder()
                .add_service(identity::identity_server::IdentityServer::new(
                    services::identity::Identity::instance(),
                ))
                .add_service(wal::wal_server::WalServer::new(services::wal::Wal::new(
                    instance.clone(),
                )))
                .add_service(backup::backup_server::BackupServer::new(
                    services::backup::Backup::new(instance.clone()),
                ))
                .add_service(metrics::metrics_server::MetricsServer::new(
                    services::metrics::Metrics::new(instance),
                ))
        },
    )
    .await
}

/// The recovery Job's sidecar: Identity, WAL (the same Restore as the instance role: during
/// a bootstrap the Cluster has no primary, so it reads the recovery source), RestoreJobHooks
/// and Health, with the same socket and shutdown as [`serve_instance`].
///
/// # Errors
/// [`Error::Listen`] when the socket cannot be set up, [`Error::Serve`] when the server fails.
pub async fn serve_restore(
    plugin_path: &Path,
    config: &Config,
    log: &Logger,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    serve(
        plugin_path,
        config,
        log,
        Role::Restore,
        shutdown,
        |instance| {
            Server::builder()
                .add_service(identity::identity_server::IdentityServer::new(
                    services::identity::Identity::restore(),
                ))
                .add_service(wal::wal_server::WalServer::new(services::wal::Wal::new(
                    instance.clone(),
                )))
                .add_service(wal::restore_job_hooks_server::RestoreJobHooksServer::new(
                    services::restore_job::RestoreJob::new(instance),
                ))
        },
    )
    .await
}

/// What both roles share: bind the socket, add Health to the role's `routes`, serve until
/// `shutdown`, stop gracefully within [`SHUTDOWN_GRACE`], remove the socket.
async fn serve(
    plugin_path: &Path,
    config: &Config,
    log: &Logger,
    role: Role,
    shutdown: impl Future<Output = ()>,
    routes: impl FnOnce(Arc<Instance>) -> Router,
) -> Result<(), Error> {
    let (socket, listener) = bind(plugin_path, log)?;
    // A new reporter says SERVING for the empty service name, the one the probe asks about.
    let (_health_reporter, health) = tonic_health::server::health_reporter();
    log.info(
        "Starting the CNPG-I server",
        &[
            ("socket", json!(socket)),
            ("role", json!(role.name())),
            ("name", json!(PLUGIN_NAME)),
            ("version", json!(PLUGIN_VERSION)),
            ("namespace", json!(config.namespace)),
            ("clusterName", json!(config.cluster_name)),
            ("podName", json!(config.pod_name)),
        ],
    );
    let instance = Arc::new(Instance::new(config.clone(), log.clone()));
    // The instance role keeps the catalog; the recovery Job's sidecar only restores. Stopped
    // with the server: aborted once serving ends, whichever way it ends.
    let maintenance = (role == Role::Instance)
        .then(|| AbortOnDrop(tokio::spawn(retention::run(instance.clone()))));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = routes(instance)
        .add_service(health)
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
            let _ = stopped.await;
        });
    tokio::pin!(server);
    let served = tokio::select! {
        served = &mut server => served,
        () = shutdown => {
            // Graceful first: running calls finish, idle connections get a GOAWAY. A client
            // that never answers must not keep the Pod from stopping, hence the bound (the
            // plugin's Go server stops at once).
            let _ = stop.send(());
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(served) => served,
                Err(_) => {
                    log.warning(
                        "Calls still open after the grace period, closing them",
                        &[("grace", json!(format!("{SHUTDOWN_GRACE:?}")))],
                    );
                    Ok(())
                }
            }
        }
    };
    drop(maintenance);
    if let Err(error) = remove_socket(&socket) {
        log.warning(
            "Could not remove the socket",
            &[
                ("socket", json!(socket)),
                ("error", json!(error.to_string())),
            ],
        );
    }
    log.info("CNPG-I server stopped", &[("socket", json!(socket))]);
    served.map_err(|source| Error::Serve {
        path: socket,
        source,
    })
}

/// A spawned task aborted when this is dropped, so an early return cannot leave it running.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
