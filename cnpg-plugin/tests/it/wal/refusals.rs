//! Archive calls that cannot succeed end with a gRPC status that names what is wrong, before
//! anything reaches the store, and never with a credential in the status or the log.

use cnpg_plugin::proto::wal::{WalArchiveRequest, WalRestoreRequest, wal_client::WalClient};
use serde_json::{Value, json};
use tonic::Code;

use super::rig::{Rig, SECRET, SECRET_ACCESS_KEY, cluster, definition, shared_dir};

#[tokio::test]
async fn bad_archive_calls_are_refused_by_name_and_nothing_is_archived() {
    let Some(rig) = Rig::new() else { return };
    rig.object_store("good", json!({}));
    let mut no_key = rig.configuration("no-key", json!({}));
    no_key["s3Credentials"]["secretAccessKey"]["key"] = json!("NO_SUCH_KEY");
    rig.api.put_object_store("no-key", no_key);
    // Read-protected from the start: the client caches Secrets for 10 s, as the plugin's.
    let mut forbidden = rig.configuration("forbidden", json!({}));
    for key in ["accessKeyId", "secretAccessKey", "region"] {
        forbidden["s3Credentials"][key]["name"] = json!("forbidden-credentials");
    }
    rig.api.put_object_store("forbidden", forbidden);
    rig.api.put_secret(
        "forbidden-credentials",
        &[
            ("ACCESS_KEY_ID", b"a"),
            ("ACCESS_SECRET_KEY", SECRET_ACCESS_KEY.as_bytes()),
            ("REGION", b"us-east-1"),
        ],
    );
    rig.api.forbid_secret("forbidden-credentials");
    let pgdata = shared_dir(&rig.root.join("pgdata"));
    let pg_wal = shared_dir(&pgdata.join("pg_wal"));
    let segment = pg_wal.join("000000010000000000000001");
    std::fs::write(&segment, b"not archived").unwrap();
    let sidecar = rig.sidecar("pg-1", &pgdata).await;
    let mut client = WalClient::new(sidecar.channel().await);
    let archive = |cluster: &Value, path: &str| WalArchiveRequest {
        cluster_definition: definition(cluster),
        source_file_name: path.to_owned(),
        check_empty_wal_archive: Some(false),
        ..WalArchiveRequest::default()
    };
    let segment = segment.to_string_lossy().into_owned();
    let mut refusals = Vec::new();
    let mut refused = async |request: WalArchiveRequest, code: Code, names: &[&str]| {
        let status = match client.archive(request).await {
            Ok(_) => panic!("archived; the sidecar's log:\n{}", sidecar.log()),
            Err(status) => status,
        };
        assert_eq!(status.code(), code, "{status:?}");
        for name in names {
            assert!(status.message().contains(name), "{name} in {status:?}");
        }
        assert!(!status.message().contains('\n'), "one line: {status:?}");
        refusals.push(status.message().to_owned());
    };

    let mut without_plugin = cluster(Some("good"), "pg-1");
    without_plugin["spec"]["plugins"] = json!([]);
    refused(
        archive(&without_plugin, &segment),
        Code::FailedPrecondition,
        &["\"pg\"", "barman-cloud.cloudnative-pg.io"],
    )
    .await;
    refused(
        archive(&cluster(None, "pg-1"), &segment),
        Code::FailedPrecondition,
        &["barmanObjectName"],
    )
    .await;
    refused(
        archive(&cluster(Some("missing-store"), "pg-1"), &segment),
        Code::FailedPrecondition,
        &["\"missing-store\""],
    )
    .await;
    refused(
        archive(&cluster(Some("no-key"), "pg-1"), &segment),
        Code::FailedPrecondition,
        &["\"no-key\"", SECRET, "NO_SUCH_KEY"],
    )
    .await;
    for outside in [
        "/etc/passwd".to_owned(),
        pgdata
            .join("postgresql.conf")
            .to_string_lossy()
            .into_owned(),
        format!("{}/../global/pg_control", pg_wal.display()),
    ] {
        refused(
            archive(&cluster(Some("good"), "pg-1"), &outside),
            Code::InvalidArgument,
            &[&outside, "pg_wal"],
        )
        .await;
    }
    refused(
        WalArchiveRequest {
            cluster_definition: b"{not json".to_vec(),
            source_file_name: segment.clone(),
            ..WalArchiveRequest::default()
        },
        Code::InvalidArgument,
        &["Cluster definition"],
    )
    .await;
    // The plugin's answer while its operator has not granted the Role yet.
    refused(
        archive(&cluster(Some("forbidden"), "pg-1"), &segment),
        Code::FailedPrecondition,
        &["\"forbidden\"", "forbidden-credentials", "retrying"],
    )
    .await;

    let status = client
        .restore(WalRestoreRequest {
            cluster_definition: definition(&cluster(Some("good"), "pg-1")),
            source_wal_name: "../../etc/passwd".into(),
            destination_file_name: pg_wal.join("RECOVERYXLOG").to_string_lossy().into_owned(),
            ..WalRestoreRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    assert_eq!(
        rig.keys(""),
        Vec::<String>::new(),
        "nothing reached the store"
    );
    assert!(sidecar.executed("barman-cloud-wal-archive").is_empty());
    assert!(
        sidecar
            .executed("barman-cloud-check-wal-archive")
            .is_empty()
    );
    let log = sidecar.log();
    assert_eq!(
        sidecar.logged("Failed archiving WAL: PostgreSQL will retry"),
        refusals.len(),
        "each failed call logged once:\n{log}"
    );
    for message in &refusals {
        assert!(!message.contains(SECRET_ACCESS_KEY));
    }
    assert!(!log.contains(SECRET_ACCESS_KEY), "no credential in the log");
}

#[tokio::test]
async fn a_failed_upload_fails_the_call_with_the_commands_last_line_and_leaves_no_marker() {
    let Some(rig) = Rig::new() else { return };
    // A bucket that does not exist: every upload fails.
    let mut configuration = rig.configuration("gone", json!({"maxParallel": 2}));
    configuration["destinationPath"] = json!(format!("s3://{}-missing/gone", rig.bucket));
    rig.api.put_object_store("gone", configuration);
    let pgdata = shared_dir(&rig.root.join("pgdata"));
    let pg_wal = shared_dir(&pgdata.join("pg_wal"));
    let status = shared_dir(&pg_wal.join("archive_status"));
    for name in ["000000010000000000000001", "000000010000000000000002"] {
        std::fs::write(pg_wal.join(name), b"segment").unwrap();
        std::fs::write(status.join(format!("{name}.ready")), b"").unwrap();
    }
    let sidecar = rig.sidecar("pg-1", &pgdata).await;
    let mut client = WalClient::new(sidecar.channel().await);
    let requested = pg_wal.join("000000010000000000000001");
    let status = client
        .archive(WalArchiveRequest {
            cluster_definition: definition(&cluster(Some("gone"), "pg-1")),
            source_file_name: requested.to_string_lossy().into_owned(),
            ..WalArchiveRequest::default()
        })
        .await
        .unwrap_err();
    let message = status.message();
    assert!(
        message.contains(&*requested.to_string_lossy())
            && message.contains("barman-cloud-wal-archive exited ")
            && message.contains("\"gone\""),
        "{status:?}"
    );
    assert_ne!(status.code(), Code::Ok);
    assert_eq!(sidecar.executed("barman-cloud-wal-archive").len(), 2);
    assert!(
        sidecar.spooled().is_empty(),
        "no marker for a failed extra file"
    );
    assert_eq!(
        sidecar.logged("Failed archiving WAL: PostgreSQL will retry"),
        1
    );
    assert_eq!(
        sidecar.logged("Failed pre-archiving WAL: PostgreSQL will retry it"),
        1
    );
    assert!(!sidecar.log().contains(SECRET_ACCESS_KEY));
}
