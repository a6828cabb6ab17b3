//! CloudNativePG's side of a connection (`LoadPlugin`): Identity metadata and capabilities,
//! each advertised service's capabilities, Probe, and the health check the startup probe
//! makes; then a clean stop on SIGTERM or SIGINT. Every expected value is the Barman Cloud
//! Plugin's instance role's, or its restore role's for `manager restore`
//! (shared/spec/cnpg-i-protocol.md §4.0).

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;

use cnpg_plugin::proto::backup::{
    self, BackupCapabilitiesRequest, BackupRequest, backup_client::BackupClient,
};
use cnpg_plugin::proto::identity::{
    GetPluginCapabilitiesRequest, GetPluginMetadataRequest, ProbeRequest,
    identity_client::IdentityClient, plugin_capability,
};
use cnpg_plugin::proto::metrics::{
    self, CollectMetricsRequest, DefineMetricsRequest, MetricsCapabilitiesRequest,
    metrics_client::MetricsClient,
};
use cnpg_plugin::proto::wal::{
    self, WalArchiveRequest, WalCapabilitiesRequest, WalRestoreRequest, WalStatusRequest,
    wal_client::WalClient,
};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::support::{Sidecar, healthcheck, json_lines};

/// The RPC type numbers of a service's capability list (each service has its own message
/// types, hence a macro).
macro_rules! rpc_types {
    ($capabilities:expr, $rpc:path) => {
        $capabilities
            .iter()
            .map(|capability| match &capability.r#type {
                Some($rpc(rpc)) => rpc.r#type,
                None => panic!("a capability without an RPC: {capability:?}"),
            })
            .collect::<Vec<i32>>()
    };
}

#[tokio::test]
async fn cnpg_handshake_then_sigterm_removes_the_socket() {
    // A stale socket from a previous run: bound, then its listener dropped.
    let mut sidecar = Sidecar::start(|plugin_path| {
        std::fs::create_dir_all(plugin_path).unwrap();
        let socket = cnpg_plugin::client::socket_path(plugin_path);
        drop(std::os::unix::net::UnixListener::bind(socket).unwrap());
    });
    let channel = sidecar.connect().await;
    assert!(
        std::fs::metadata(sidecar.socket())
            .unwrap()
            .file_type()
            .is_socket()
    );

    // 1. GetPluginMetadata, field by field.
    let mut identity = IdentityClient::new(channel.clone());
    let metadata = identity
        .get_plugin_metadata(GetPluginMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.name, "barman-cloud.cloudnative-pg.io");
    assert_eq!(
        sidecar.socket().file_name().unwrap(),
        metadata.name.as_str(),
        "CloudNativePG needs the socket named after the plugin"
    );
    assert_eq!(metadata.version, "0.14.0");
    assert_eq!(metadata.display_name, "BarmanCloudInstance");
    assert_eq!(metadata.description, "");
    assert_eq!(
        metadata.project_url,
        "https://github.com/cloudnative-pg/plugin-barman-cloud"
    );
    assert_eq!(
        metadata.repository_url,
        "https://github.com/cloudnative-pg/plugin-barman-cloud"
    );
    assert_eq!(metadata.license, "APACHE 2.0");
    assert_eq!(
        metadata.license_url,
        "https://github.com/cloudnative-pg/plugin-barman-cloud/LICENSE"
    );
    assert_eq!(metadata.maturity, "alpha");
    assert_eq!(metadata.vendor, "");
    assert_eq!(metadata.manifest, HashMap::new());

    // 2. GetPluginCapabilities: the instance role's three services, in its order.
    let capabilities = identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    let services: Vec<i32> = capabilities
        .iter()
        .map(|capability| match &capability.r#type {
            Some(plugin_capability::Type::Service(service)) => service.r#type,
            None => panic!("a capability without a service: {capability:?}"),
        })
        .collect();
    // TYPE_WAL_SERVICE = 2, TYPE_BACKUP_SERVICE = 3, TYPE_METRICS = 10 on the wire.
    assert_eq!(services, [2, 3, 10]);

    // 3. Each advertised service's GetCapabilities.
    let wal_capabilities = WalClient::new(channel.clone())
        .get_capabilities(WalCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    // TYPE_ARCHIVE_WAL = 1, TYPE_RESTORE_WAL = 2; not Status (3) nor SetFirstRequired (4).
    assert_eq!(
        rpc_types!(wal_capabilities, wal::wal_capability::Type::Rpc),
        [1, 2]
    );
    let backup_capabilities = BackupClient::new(channel.clone())
        .get_capabilities(BackupCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    assert_eq!(
        rpc_types!(backup_capabilities, backup::backup_capability::Type::Rpc),
        [1],
        "TYPE_BACKUP"
    );
    let mut metrics_client = MetricsClient::new(channel.clone());
    let metrics_capabilities = metrics_client
        .get_capabilities(MetricsCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    assert_eq!(
        rpc_types!(metrics_capabilities, metrics::metrics_capability::Type::Rpc),
        [1],
        "TYPE_METRICS"
    );

    // 4. Probe, as on each pooled acquisition.
    assert!(
        identity
            .probe(ProbeRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );

    // The metric definitions are static: three gauges with the plugin's names.
    let defined = metrics_client
        .define(DefineMetricsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .metrics;
    let names: Vec<&str> = defined
        .iter()
        .map(|metric| metric.fq_name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "barman_cloud_cloudnative_pg_io_first_recoverability_point",
            "barman_cloud_cloudnative_pg_io_last_available_backup_timestamp",
            "barman_cloud_cloudnative_pg_io_last_failed_backup_timestamp",
        ]
    );
    for metric in &defined {
        // TYPE_GAUGE = 2; CloudNativePG dereferences value_type unchecked.
        assert_eq!(metric.value_type.as_ref().map(|t| t.r#type), Some(2));
        assert!(metric.variable_labels.is_empty());
    }

    // The WAL flows answer (a request without a Cluster is refused as such, before any
    // store is read); the calls still to be written are refused plainly.
    let mut wal_client = WalClient::new(channel.clone());
    let refused = wal_client
        .archive(WalArchiveRequest {
            source_file_name: "/var/lib/postgresql/data/pgdata/pg_wal/000000010000000000000001"
                .into(),
            check_empty_wal_archive: Some(true),
            ..WalArchiveRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("Cluster definition"),
        "{refused:?}"
    );
    let refused = wal_client
        .restore(WalRestoreRequest {
            source_wal_name: "000000010000000000000002".into(),
            ..WalRestoreRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("Cluster definition"));
    let refused = wal_client
        .status(WalStatusRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented);
    let refused = BackupClient::new(channel.clone())
        .backup(BackupRequest {
            backup_definition: br#"{"metadata":{"name":"nightly"}}"#.to_vec(),
            ..BackupRequest::default()
        })
        .await
        .unwrap_err();
    // The Backup flow and Collect read the Cluster definition first: none is refused as such.
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("Cluster definition"),
        "{refused:?}"
    );
    let refused = metrics_client
        .collect(CollectMetricsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("Cluster definition"),
        "{refused:?}"
    );

    // The startup probe's call, then the probe command itself.
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, ServingStatus::Serving as i32);
    let probe = healthcheck(&sidecar.plugin_path);
    assert_eq!(
        probe.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(channel);

    // SIGTERM: a clean exit, the socket gone, and the probe now fails with 1.
    let (status, logs) = sidecar.stop("TERM").await;
    assert!(status.success(), "{status:?}; logs:\n{logs}");
    assert!(!sidecar.socket().exists(), "the socket is still there");
    let lines = json_lines(&logs);
    for line in &lines {
        for key in ["level", "ts", "msg", "logger"] {
            assert!(line.get(key).is_some(), "no {key:?} in {line}");
        }
    }
    let messages: Vec<&str> = lines
        .iter()
        .filter_map(|line| line["msg"].as_str())
        .collect();
    assert!(messages.contains(&"Removed a stale socket"), "{logs}");
    assert!(messages.contains(&"Starting the CNPG-I server"), "{logs}");
    assert!(messages.contains(&"Stopping on signal"), "{logs}");
    assert!(messages.contains(&"CNPG-I server stopped"), "{logs}");
    let probe = healthcheck(&sidecar.plugin_path);
    assert_eq!(probe.status.code(), Some(1));
    let probe_logs = String::from_utf8(probe.stderr).unwrap();
    assert!(
        probe_logs.contains("barman-cloud.cloudnative-pg.io"),
        "{probe_logs}"
    );
}

#[tokio::test]
async fn sigint_stops_the_sidecar_too() {
    let mut sidecar = Sidecar::start(|_| {});
    drop(sidecar.connect().await);
    let (status, logs) = sidecar.stop("INT").await;
    assert!(status.success(), "{status:?}; logs:\n{logs}");
    assert!(!sidecar.socket().exists());
    assert!(logs.contains(r#""signal":"SIGINT""#), "{logs}");
}

#[tokio::test]
async fn a_client_that_never_answers_does_not_hold_the_stop() {
    let mut sidecar = Sidecar::start(|_| {});
    drop(sidecar.connect().await);
    // A client on a runtime that stops running once connected: it never acknowledges the
    // server's GOAWAY, so only the grace period ends its connection.
    let socket = sidecar.socket();
    let (connected, wait_connected) = std::sync::mpsc::channel();
    // Detached: it outlives the test, which need not wait for it.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let channel = runtime.block_on(async {
            let mut client =
                IdentityClient::new(cnpg_plugin::client::connect(&socket).await.unwrap());
            client.probe(ProbeRequest {}).await.unwrap();
            client
        });
        connected.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(60));
        drop(channel);
    });
    wait_connected.recv().unwrap();
    let started = std::time::Instant::now();
    let (status, logs) = sidecar.stop("TERM").await;
    assert!(status.success(), "{status:?}; logs:\n{logs}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(12),
        "{logs}"
    );
    assert!(!sidecar.socket().exists());
    assert!(
        logs.contains("Calls still open after the grace period"),
        "{logs}"
    );
}

#[tokio::test]
async fn the_restore_roles_handshake_then_sigterm() {
    use cnpg_plugin::proto::wal::{
        RestoreJobHooksCapabilitiesRequest, RestoreRequest,
        restore_job_hooks_client::RestoreJobHooksClient,
    };
    let mut sidecar = Sidecar::start_restore(|_| {});
    let channel = sidecar.connect().await;
    let mut identity = IdentityClient::new(channel.clone());
    // The same metadata as the instance role.
    let metadata = identity
        .get_plugin_metadata(GetPluginMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata, cnpg_plugin::metadata::plugin_metadata());
    assert_eq!(metadata.name, "barman-cloud.cloudnative-pg.io");
    let services: Vec<i32> = identity
        .get_plugin_capabilities(GetPluginCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities
        .iter()
        .map(|capability| match &capability.r#type {
            Some(plugin_capability::Type::Service(service)) => service.r#type,
            None => panic!("a capability without a service: {capability:?}"),
        })
        .collect();
    // TYPE_RESTORE_JOB = 6, TYPE_WAL_SERVICE = 2, the plugin's restore identity's order.
    assert_eq!(services, [6, 2]);
    let kinds: Vec<i32> = RestoreJobHooksClient::new(channel.clone())
        .get_capabilities(RestoreJobHooksCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities
        .iter()
        .map(|capability| capability.kind)
        .collect();
    assert_eq!(kinds, [1], "KIND_RESTORE");
    let wal_capabilities = WalClient::new(channel.clone())
        .get_capabilities(WalCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner()
        .capabilities;
    assert_eq!(
        rpc_types!(wal_capabilities, wal::wal_capability::Type::Rpc),
        [1, 2]
    );
    assert!(
        identity
            .probe(ProbeRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    // Restore answers (a request without a Cluster is refused as such, before any store is
    // read); Backup and Metrics are not served by this role.
    let refused = RestoreJobHooksClient::new(channel.clone())
        .restore(RestoreRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("Cluster definition"),
        "{refused:?}"
    );
    let refused = BackupClient::new(channel.clone())
        .get_capabilities(BackupCapabilitiesRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented);
    let refused = MetricsClient::new(channel.clone())
        .get_capabilities(MetricsCapabilitiesRequest {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unimplemented);
    // The Job's startup probe works the same.
    let probe = healthcheck(&sidecar.plugin_path);
    assert_eq!(
        probe.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    drop(channel);

    let (status, logs) = sidecar.stop("TERM").await;
    assert!(status.success(), "{status:?}; logs:\n{logs}");
    assert!(!sidecar.socket().exists(), "the socket is still there");
    assert!(logs.contains(r#""role":"restore""#), "{logs}");
    assert!(logs.contains("CNPG-I server stopped"), "{logs}");
}
