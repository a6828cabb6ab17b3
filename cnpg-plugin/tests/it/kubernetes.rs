//! The library's Kubernetes client (`cnpg_plugin::kubernetes`) through the real `kube` client
//! against the API stand-in: the 10 s cache of ObjectStores and Secrets, the errors the
//! sidecar turns into gRPC codes and log lines, and the status PUT with its conflict retry.

use std::time::Duration;

use cnpg_plugin::kubernetes::{self, CACHE_TTL, Kubernetes};
use cnpg_plugin::objectstore::SecretKeySelector;
use serde_json::json;

use crate::support::apiserver::{ApiServer, NAMESPACE, object_path};

const STORE: &str = "minio-store";

fn store_path(name: &str) -> String {
    object_path("barmancloud.cnpg.io/v1", "objectstores", name)
}

fn secret_path(name: &str) -> String {
    object_path("v1", "secrets", name)
}

fn selector(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: name.into(),
        key: key.into(),
    }
}

fn s3_configuration() -> serde_json::Value {
    json!({
        "destinationPath": "s3://backups/",
        "s3Credentials": {
            "accessKeyId": {"name": "minio", "key": "ACCESS_KEY_ID"},
            "secretAccessKey": {"name": "minio", "key": "ACCESS_SECRET_KEY"}
        }
    })
}

async fn client(api: &ApiServer) -> Kubernetes {
    Kubernetes::with_config(NAMESPACE, api.config().await)
}

#[test]
fn the_cache_lives_ten_seconds_as_the_plugins() {
    assert_eq!(CACHE_TTL, Duration::from_secs(10));
}

#[tokio::test]
async fn object_stores_are_read_once_per_ttl() {
    let api = ApiServer::start();
    api.put_object_store(STORE, s3_configuration());
    let kubernetes = client(&api).await.with_ttl(Duration::from_millis(300));

    let store = kubernetes.object_store(STORE).await.unwrap();
    assert_eq!(store.metadata.name, STORE);
    assert_eq!(store.spec.configuration.destination_path, "s3://backups/");
    kubernetes.object_store(STORE).await.unwrap();
    assert_eq!(
        api.count("GET", &store_path(STORE)),
        1,
        "{:?}",
        api.requests()
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    kubernetes.object_store(STORE).await.unwrap();
    assert_eq!(
        api.count("GET", &store_path(STORE)),
        2,
        "{:?}",
        api.requests()
    );
}

#[tokio::test]
async fn secrets_are_read_once_per_ttl_whatever_the_key() {
    let api = ApiServer::start();
    api.put_secret(
        "minio",
        &[("ACCESS_KEY_ID", b"id"), ("ACCESS_SECRET_KEY", b"secret")],
    );
    let kubernetes = client(&api).await.with_ttl(Duration::from_millis(300));

    let id = kubernetes
        .secret_value(&selector("minio", "ACCESS_KEY_ID"))
        .await
        .unwrap();
    let secret = kubernetes
        .secret_value(&selector("minio", "ACCESS_SECRET_KEY"))
        .await
        .unwrap();
    assert_eq!(
        (id.as_slice(), secret.as_slice()),
        (&b"id"[..], &b"secret"[..])
    );
    assert_eq!(
        api.count("GET", &secret_path("minio")),
        1,
        "{:?}",
        api.requests()
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    kubernetes
        .secret_value(&selector("minio", "ACCESS_KEY_ID"))
        .await
        .unwrap();
    assert_eq!(api.count("GET", &secret_path("minio")), 2);
}

#[tokio::test]
async fn within_the_default_ttl_a_changed_secret_is_not_seen() {
    let api = ApiServer::start();
    api.put_secret("minio", &[("ACCESS_KEY_ID", b"old")]);
    let kubernetes = client(&api).await;
    let key = selector("minio", "ACCESS_KEY_ID");
    assert_eq!(kubernetes.secret_value(&key).await.unwrap(), b"old");
    api.put_secret("minio", &[("ACCESS_KEY_ID", b"new")]);
    assert_eq!(kubernetes.secret_value(&key).await.unwrap(), b"old");
    assert_eq!(api.count("GET", &secret_path("minio")), 1);
}

#[tokio::test]
async fn a_missing_object_is_named_with_its_namespace() {
    let api = ApiServer::start();
    let kubernetes = client(&api).await;

    let error = kubernetes.object_store("nope").await.unwrap_err();
    assert!(error.is_not_found() && !error.is_forbidden(), "{error:?}");
    assert_eq!(
        error.to_string(),
        "ObjectStore default/nope not found; check the name in the Cluster's plugin \
         parameters or the ObjectStore, and that it exists in namespace default"
    );
    let error = kubernetes
        .secret_value(&selector("gone", "key"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("Secret default/gone not found;"),
        "{error}"
    );
    // A failed read is not cached.
    kubernetes.object_store("nope").await.unwrap_err();
    assert_eq!(api.count("GET", &store_path("nope")), 2);
}

#[tokio::test]
async fn a_forbidden_secret_says_the_role_may_be_missing() {
    let api = ApiServer::start();
    api.put_secret("minio", &[("ACCESS_KEY_ID", b"AKIAFORBIDDEN")]);
    api.forbid_secret("minio");
    let kubernetes = client(&api).await;

    let error = kubernetes
        .secret_value(&selector("minio", "ACCESS_KEY_ID"))
        .await
        .unwrap_err();
    assert!(error.is_forbidden(), "{error:?}");
    let message = error.to_string();
    assert!(
        message.starts_with(
            "get Secret default/minio: forbidden; the plugin's operator may not have \
             reconciled the Role yet"
        ),
        "{message}"
    );
    assert!(
        message.contains("cannot get resource \"secrets\""),
        "{message}"
    );
    assert!(!message.contains('\n') && !message.contains("AKIAFORBIDDEN"));
}

#[tokio::test]
async fn a_missing_key_names_the_secret_and_the_key() {
    let api = ApiServer::start();
    api.put_secret("minio", &[("ACCESS_KEY_ID", b"AKIAVALUE")]);
    let kubernetes = client(&api).await;
    let error = kubernetes
        .secret_value(&selector("minio", "SECRET_KEY"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Secret default/minio has no key \"SECRET_KEY\"; add the key to the Secret or fix \
         the key the ObjectStore names"
    );
}

#[tokio::test]
async fn an_object_store_that_does_not_decode_is_named() {
    let api = ApiServer::start();
    api.put_object_store(STORE, json!({"endpointURL": "http://minio:9000"}));
    let error = client(&api).await.object_store(STORE).await.unwrap_err();
    let message = error.to_string();
    assert!(
        message
            .starts_with("decode ObjectStore default/minio-store: missing field `destinationPath`"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreachable_api_is_one_line() {
    let api = ApiServer::start();
    let config = api.config().await;
    drop(api);
    // Stopped: nothing listens on the port any more.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = Kubernetes::with_config(NAMESPACE, config)
        .object_store(STORE)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("get ObjectStore default/minio-store: "),
        "{message}"
    );
    assert!(
        message.ends_with("check the API server is reachable from the Pod"),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[tokio::test]
async fn without_kubeconfig_or_service_account_the_client_cannot_be_made() {
    // Only meaningful where neither is present (as on the test machines).
    let home_config = std::env::var_os("HOME")
        .map(|home| std::path::Path::new(&home).join(".kube/config"))
        .is_some_and(|path| path.exists());
    if std::env::var_os("KUBECONFIG").is_some()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || home_config
    {
        eprintln!("skipped: this machine has a kubeconfig or an in-cluster ServiceAccount");
        return;
    }
    let error = Kubernetes::new(NAMESPACE)
        .object_store(STORE)
        .await
        .unwrap_err();
    assert!(
        matches!(error, kubernetes::Error::Config { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.starts_with("make the Kubernetes client: "),
        "{message}"
    );
    assert!(message.contains("KUBECONFIG"), "{message}");
    assert!(!message.contains('\n'));
}

/// An ObjectStore with fields the sidecar does not know, in spec and in status.
fn store_with_unknown_fields(api: &ApiServer) {
    api.put(json!({
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": STORE, "namespace": NAMESPACE, "labels": {"team": "db"}},
        "spec": {
            "configuration": s3_configuration(),
            "retentionPolicy": "30d",
            "aFutureSpecField": {"x": 1}
        },
        "status": {
            "aFutureStatusField": "kept",
            "serverRecoveryWindow": {
                "other": {"firstRecoverabilityPoint": "2026-01-01T00:00:00Z"},
                "pg": {"lastSuccussfulBackupTime": "2025-01-01T00:00:00Z"}
            }
        }
    }));
}

#[tokio::test]
async fn the_status_put_retries_a_conflict_and_keeps_unknown_fields() {
    let api = ApiServer::start();
    store_with_unknown_fields(&api);
    let before = api.object("objectstores", STORE).unwrap();
    let kubernetes = client(&api).await;
    // Cached before the update: the update must not use this copy.
    kubernetes.object_store(STORE).await.unwrap();
    api.inject_conflicts(1);

    kubernetes
        .update_recovery_window(STORE, "pg", |window| {
            window.last_failed_backup_time = Some("2026-12-02T05:00:00Z".into());
        })
        .await
        .unwrap();

    let after = api.object("objectstores", STORE).unwrap();
    let status_path = format!("{}/status", store_path(STORE));
    assert_eq!(api.count("PUT", &status_path), 2, "{:?}", api.requests());
    // One cached read, then one uncached read per attempt.
    assert_eq!(
        api.count("GET", &store_path(STORE)),
        3,
        "{:?}",
        api.requests()
    );
    assert!(api.requests().iter().all(|seen| seen.method != "PATCH"));
    assert_ne!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    assert_eq!(after["spec"], before["spec"]);
    assert_eq!(after["metadata"]["labels"], json!({"team": "db"}));
    assert_eq!(
        after["status"],
        json!({
            "aFutureStatusField": "kept",
            "serverRecoveryWindow": {
                "other": {"firstRecoverabilityPoint": "2026-01-01T00:00:00Z"},
                "pg": {
                    "lastSuccussfulBackupTime": "2025-01-01T00:00:00Z",
                    "lastFailedBackupTime": "2026-12-02T05:00:00Z"
                }
            }
        })
    );
    // The cache was dropped: the next read shows the new status.
    let reread = kubernetes.object_store(STORE).await.unwrap();
    let window = &reread.status.unwrap().server_recovery_window["pg"];
    assert_eq!(
        window.last_failed_backup_time.as_deref(),
        Some("2026-12-02T05:00:00Z")
    );
}

#[tokio::test]
async fn a_change_by_another_writer_is_kept() {
    let api = ApiServer::start();
    api.put_object_store(STORE, s3_configuration());
    let kubernetes = client(&api).await;
    // Another writer's change bumps the version; the update reads it fresh and keeps it.
    api.modify("objectstores", STORE, |object| {
        object["status"] =
            json!({"serverRecoveryWindow": {"other": {"lastFailedBackupTime": "x"}}});
    });
    kubernetes
        .update_recovery_window(STORE, "pg", |window| {
            window.first_recoverability_point = Some("2026-12-01T00:00:00Z".into());
        })
        .await
        .unwrap();
    let status = &api.object("objectstores", STORE).unwrap()["status"];
    assert_eq!(
        status["serverRecoveryWindow"],
        json!({
            "other": {"lastFailedBackupTime": "x"},
            "pg": {"firstRecoverabilityPoint": "2026-12-01T00:00:00Z"}
        })
    );
}

#[tokio::test]
async fn the_status_put_gives_up_after_four_conflicts() {
    let api = ApiServer::start();
    api.put_object_store(STORE, s3_configuration());
    api.inject_conflicts(100);
    let error = client(&api)
        .await
        .update_recovery_window(STORE, "pg", |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(error, kubernetes::Error::Conflict { attempts: 4, .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "update status of ObjectStore default/minio-store: still conflicting after 4 \
         attempts; something else keeps changing the object, the next call tries again"
    );
    let status_path = format!("{}/status", store_path(STORE));
    assert_eq!(api.count("PUT", &status_path), 4);
}

#[tokio::test]
async fn the_status_of_a_missing_store_is_not_found() {
    let api = ApiServer::start();
    let error = client(&api)
        .await
        .update_recovery_window("nope", "pg", |_| {})
        .await
        .unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
}

const CNPG: &str = "postgresql.cnpg.io/v1";

fn backup(name: &str, cluster: &str) -> serde_json::Value {
    json!({
        "apiVersion": CNPG,
        "kind": "Backup",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"cluster": {"name": cluster}, "method": "plugin"},
        "status": {"phase": "completed", "backupID": format!("id-{name}")}
    })
}

#[tokio::test]
async fn the_retention_loop_reads_the_cluster_uncached() {
    let api = ApiServer::start();
    api.put(json!({
        "apiVersion": CNPG,
        "kind": "Cluster",
        "metadata": {"name": "pg", "namespace": NAMESPACE},
        "status": {"currentPrimary": "pg-1"}
    }));
    let kubernetes = client(&api).await;
    let cluster = kubernetes.cluster(CNPG, "pg").await.unwrap();
    assert_eq!(cluster["status"]["currentPrimary"], "pg-1");
    kubernetes.cluster(CNPG, "pg").await.unwrap();
    let path = object_path(CNPG, "clusters", "pg");
    assert_eq!(api.count("GET", &path), 2);
    let error = kubernetes.cluster(CNPG, "other").await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("Cluster default/other not found;"),
        "{error}"
    );
}

#[tokio::test]
async fn backups_are_listed_and_deleted() {
    let api = ApiServer::start();
    api.put(backup("b1", "pg"));
    api.put(backup("b2", "other"));
    let kubernetes = client(&api).await;
    let mut names: Vec<String> = kubernetes
        .backups(CNPG)
        .await
        .unwrap()
        .iter()
        .map(|backup| backup["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["b1", "b2"]);
    kubernetes.delete_backup(CNPG, "b1").await.unwrap();
    assert_eq!(api.objects("backups").len(), 1);
    assert!(api.object("backups", "b1").is_none());
    let error = kubernetes.delete_backup(CNPG, "b1").await.unwrap_err();
    assert!(error.is_not_found(), "{error:?}");
    let collection = format!("/apis/{CNPG}/namespaces/{NAMESPACE}/backups");
    assert_eq!(api.count("GET", &collection), 1);
    assert_eq!(api.count("DELETE", &format!("{collection}/b1")), 2);
    // Nothing is left to list.
    kubernetes.delete_backup(CNPG, "b2").await.unwrap();
    assert!(kubernetes.backups(CNPG).await.unwrap().is_empty());
}

#[tokio::test]
async fn events_are_created() {
    let api = ApiServer::start();
    let kubernetes = client(&api).await;
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "pg.", "namespace": NAMESPACE},
        "involvedObject": {"apiVersion": CNPG, "kind": "Cluster", "name": "pg"},
        "reason": "RetentionPolicyFailed",
        "type": "Warning",
        "message": "Error while enforcing retention policy"
    });
    kubernetes.create_event(&event).await.unwrap();
    let events = api.objects("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["reason"], "RetentionPolicyFailed");
    assert!(
        events[0]["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("pg.")
    );
    assert_eq!(
        api.requests()
            .last()
            .map(|seen| (seen.method.clone(), seen.path.clone())),
        Some((
            "POST".into(),
            format!("/api/v1/namespaces/{NAMESPACE}/events")
        ))
    );
}

#[tokio::test]
async fn the_stand_in_wants_the_kubeconfigs_token() {
    let api = ApiServer::start();
    let kubeconfig = std::fs::read_to_string(api.kubeconfig()).unwrap();
    assert!(
        kubeconfig.contains(&format!("server: {}", api.url())),
        "{kubeconfig}"
    );
    api.put_object_store(STORE, s3_configuration());
    let mut config = api.config().await;
    config.auth_info = Default::default();
    let error = Kubernetes::with_config(NAMESPACE, config)
        .object_store(STORE)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
    api.clear_requests();
    client(&api).await.object_store(STORE).await.unwrap();
    assert_eq!(api.requests().len(), 1);
}

/// The sidecar makes its client lazily: the handshake needs no API, reachable or not. The
/// only call made is the retention loop's read of the Cluster, in the background.
#[tokio::test]
async fn the_sidecar_handshake_contacts_no_api() {
    use cnpg_plugin::proto::identity::{ProbeRequest, identity_client::IdentityClient};

    let api = ApiServer::start();
    for kubeconfig in [
        api.kubeconfig().to_owned(),
        std::path::PathBuf::from("/nonexistent/kubeconfig"),
    ] {
        let mut sidecar =
            crate::support::Sidecar::start_with_env(|_| {}, [("KUBECONFIG", &kubeconfig)]);
        let channel = sidecar.connect().await;
        let ready = IdentityClient::new(channel)
            .probe(ProbeRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(ready.ready);
        let (status, _) = sidecar.stop("TERM").await;
        assert!(status.success(), "{status:?}");
    }
    let cluster = crate::support::apiserver::object_path("postgresql.cnpg.io/v1", "clusters", "pg");
    assert!(
        api.requests().iter().all(|seen| seen.path == cluster),
        "{:?}",
        api.requests()
    );
}

/// An API over TLS (as in a cluster) that does not answer: a one-line error, and no panic
/// from the TLS set-up whichever crypto features the build unified.
#[tokio::test]
async fn an_https_api_that_does_not_answer_is_one_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = kube::Config::new(format!("https://127.0.0.1:{port}").parse().unwrap());
    let error = Kubernetes::with_config(NAMESPACE, config)
        .secret_value(&selector("minio", "key"))
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("get Secret default/minio: "),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

/// Parallel archives read the same store and Secret at once: one request each, as the
/// plugin's client (which holds its lock across the GET).
#[tokio::test]
async fn concurrent_reads_make_one_request() {
    let api = ApiServer::start();
    api.put_object_store(STORE, s3_configuration());
    api.put_secret("minio", &[("ACCESS_KEY_ID", b"id")]);
    let kubernetes = std::sync::Arc::new(client(&api).await);
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let kubernetes = std::sync::Arc::clone(&kubernetes);
        reads.spawn(async move {
            let key = selector("minio", "ACCESS_KEY_ID");
            let (store, secret) = tokio::join!(
                kubernetes.object_store(STORE),
                kubernetes.secret_value(&key)
            );
            store.unwrap();
            assert_eq!(secret.unwrap(), b"id");
        });
    }
    while let Some(read) = reads.join_next().await {
        read.unwrap();
    }
    assert_eq!(
        api.count("GET", &store_path(STORE)),
        1,
        "{:?}",
        api.requests()
    );
    assert_eq!(
        api.count("GET", &secret_path("minio")),
        1,
        "{:?}",
        api.requests()
    );
}
