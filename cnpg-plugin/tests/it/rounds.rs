//! Credentials from Secrets to a real round trip: the Secrets are in the API stand-in, the
//! environment comes from `credentials::environment`, and our real `barman-cloud-wal-archive`
//! and `barman-cloud-wal-restore` (found through `PATH`, as the sidecar finds them) move a
//! `.history` file through the emulators the rig started (moto, Azurite, the GCS emulator),
//! run by `barman::run::Invocation` as the flows run them. The bytes restored must be the
//! bytes archived, and no Secret value may reach the sidecar's log.
//!
//! A test skips when the rig's variable for its emulator is unset, and fails instead when
//! `BCRS_REQUIRE_SERVICES=1`.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};

use cnpg_plugin::barman::run::{Finished, Invocation, Stdout};
use cnpg_plugin::credentials::{cloud_provider_args, environment};
use cnpg_plugin::kubernetes::Kubernetes;
use cnpg_plugin::log::{Level, LogOptions, Logger};
use cnpg_plugin::objectstore::ObjectStore;
use serde_json::{Value, json};

use crate::support::apiserver::{ApiServer, NAMESPACE};
use crate::support::path_with_barman;

const HISTORY: &str = "00000002.history";
const HISTORY_TEXT: &[u8] = b"1\t0/3000000\tno recovery target specified\n";
const SERVER: &str = "pg";
/// Azurite's account (the rig's connection string names it).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// The rig's variable, or `None` to skip (a panic when services are required).
pub(crate) fn required(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("BCRS_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{var} is not set: start the rig with harness/services.sh start")
        }
        _ => {
            eprintln!("skipped: {var} is not set (start the rig with harness/services.sh)");
            None
        }
    }
}

/// A bucket or container name no other test uses.
pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn run_ok(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: {error}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs Azure's Python SDK from Barman's venv with the connection string in its environment
/// (never on a command line a failure would print).
fn azure_python(script: &str, connection: &str, args: &[&str]) -> Option<String> {
    let python = format!("{}/python", required("BCRS_BARMAN_BIN")?);
    Some(run_ok(
        Command::new(python)
            .args(["-c", script])
            .args(args)
            .env("BCRS_AZURE_CONNECTION_STRING", connection),
        "Azure SDK",
    ))
}

pub(crate) fn create_azure_container(connection: &str, container: &str) -> Option<()> {
    azure_python(
        "import os, sys; from azure.storage.blob import BlobServiceClient as C; \
         C.from_connection_string(os.environ['BCRS_AZURE_CONNECTION_STRING'])\
         .create_container(sys.argv[1])",
        connection,
        &[container],
    )
    .map(drop)
}

/// An account SAS for Azurite, signed with the account key of the rig's connection string.
pub(crate) fn azurite_sas(connection: &str) -> Option<String> {
    azure_python(
        "import os, datetime as d; from azure.storage.blob import generate_account_sas, \
         ResourceTypes, AccountSasPermissions; \
         c = dict(p.split('=', 1) for p in os.environ['BCRS_AZURE_CONNECTION_STRING'].split(';') if p); \
         print(generate_account_sas(c['AccountName'], c['AccountKey'], \
         ResourceTypes(service=True, container=True, object=True), \
         AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True, create=True), \
         expiry=d.datetime.now(d.timezone.utc) + d.timedelta(hours=2)), end='')",
        connection,
        &[],
    )
}

/// A writer the test reads back: the sidecar's log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Secrets to store: each name with its keys and values.
type Secrets<'a> = &'a [(&'a str, &'a [(&'a str, &'a [u8])])];

/// One store in the stand-in, the client that reads it, and the sidecar's log.
struct Round {
    _api: ApiServer,
    kubernetes: Kubernetes,
    store: ObjectStore,
    log: Logger,
    captured: Captured,
    controller: tempfile::TempDir,
    /// Variables of the sidecar's own environment in a deployment (the ObjectStore's
    /// `instanceSidecarConfiguration.env`), added after the credentials.
    sidecar_env: Vec<(String, String)>,
}

impl Round {
    /// `secrets` are stored in the stand-in, then the ObjectStore with `configuration`.
    async fn new(secrets: Secrets<'_>, configuration: Value) -> Self {
        let api = ApiServer::start();
        for (name, data) in secrets {
            api.put_secret(name, data);
        }
        api.put_object_store("store", configuration);
        let kubernetes = Kubernetes::with_config(NAMESPACE, api.config().await);
        let store = kubernetes.object_store("store").await.unwrap();
        let captured = Captured::default();
        let options = LogOptions {
            level: Level::Trace,
            ..LogOptions::default()
        };
        Self {
            _api: api,
            kubernetes,
            store,
            log: Logger::to_writer(options, Box::new(captured.clone())),
            captured,
            controller: tempfile::tempdir().unwrap(),
            sidecar_env: Vec::new(),
        }
    }

    /// The environment the flows add for this store, with `PATH` leading to our binaries.
    async fn env(&self) -> Vec<(String, String)> {
        let mut env = environment(&self.kubernetes, &self.store, self.controller.path())
            .await
            .unwrap();
        env.extend(self.sidecar_env.iter().cloned());
        env.push(("PATH".into(), path_with_barman()));
        env
    }

    /// `[--endpoint-url URL] [--cloud-provider P [--credential C]] DEST SERVER`, the
    /// plugin's order for both commands.
    fn common_args(&self) -> Vec<String> {
        let configuration = &self.store.spec.configuration;
        let mut args = Vec::new();
        if let Some(url) = &configuration.endpoint_url {
            args.extend(["--endpoint-url".to_owned(), url.clone()]);
        }
        args.extend(cloud_provider_args(configuration));
        args.extend([configuration.destination_path.clone(), SERVER.to_owned()]);
        args
    }

    async fn archive(&self) -> Finished {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join(HISTORY);
        std::fs::write(&wal, HISTORY_TEXT).unwrap();
        let mut args = self.common_args();
        args.push(wal.to_str().unwrap().to_owned());
        Invocation {
            program: "barman-cloud-wal-archive",
            args,
            env: self.env().await,
        }
        .run(&self.log, Stdout::Log)
        .await
        .unwrap()
    }

    async fn restore(&self) -> (Finished, Option<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("restored");
        let mut args = self.common_args();
        args.extend([HISTORY.to_owned(), target.to_str().unwrap().to_owned()]);
        let finished = Invocation {
            program: "barman-cloud-wal-restore",
            args,
            env: self.env().await,
        }
        .run(&self.log, Stdout::Log)
        .await
        .unwrap();
        (finished, std::fs::read(&target).ok())
    }

    /// Archive then restore: the same bytes come back.
    async fn round_trip(&self) {
        let archived = self.archive().await;
        assert!(
            archived.success(),
            "archive: {archived:?}\n{}",
            self.captured.text()
        );
        let (restored, bytes) = self.restore().await;
        assert!(
            restored.success(),
            "restore: {restored:?}\n{}",
            self.captured.text()
        );
        assert_eq!(bytes.as_deref(), Some(HISTORY_TEXT));
    }

    /// No value in `secrets` appears in the log (the argv is logged at debug level).
    fn assert_log_clean(&self, secrets: &[&str]) {
        let log = self.captured.text();
        assert!(log.contains("barman-cloud-wal-archive"), "{log}");
        for secret in secrets {
            assert!(!log.contains(secret), "a Secret value in the log:\n{log}");
        }
    }
}

#[tokio::test]
async fn s3_keys_from_a_secret() {
    let Some(endpoint) = required("BCRS_S3_ENDPOINT") else {
        return;
    };
    let bucket = unique("kube");
    run_ok(
        Command::new("curl").args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")]),
        "create the bucket",
    );
    let secret_key = "k8sRoundSecretKey/0123456789";
    let round = Round::new(
        &[(
            "s3",
            &[
                ("ID", b"k8sRoundAccessKey"),
                ("SECRET", secret_key.as_bytes()),
                ("REGION", b"us-east-1"),
            ],
        )],
        json!({
            "destinationPath": format!("s3://{bucket}/cluster"),
            "endpointURL": endpoint,
            "s3Credentials": {
                "accessKeyId": {"name": "s3", "key": "ID"},
                "secretAccessKey": {"name": "s3", "key": "SECRET"},
                "region": {"name": "s3", "key": "REGION"}
            }
        }),
    )
    .await;
    round.round_trip().await;
    round.assert_log_clean(&["k8sRoundAccessKey", secret_key]);
}

/// The rig's connection string (the account key in it) and its parts.
pub(crate) fn azurite() -> Option<(String, String, String)> {
    let endpoint = required("BCRS_AZURE_ENDPOINT")?;
    let connection = required("BCRS_AZURE_CONNECTION_STRING")?;
    let key = connection
        .split(';')
        .find_map(|part| part.strip_prefix("AccountKey="))
        .expect("an AccountKey in BCRS_AZURE_CONNECTION_STRING")
        .to_owned();
    Some((endpoint, connection, key))
}

#[tokio::test]
async fn azure_connection_string_from_a_secret() {
    let Some((endpoint, connection, key)) = azurite() else {
        return;
    };
    let container = unique("kube");
    let Some(()) = create_azure_container(&connection, &container) else {
        return;
    };
    let configuration = json!({
        "destinationPath": format!("{endpoint}/{container}/cluster"),
        "azureCredentials": {"connectionString": {"name": "azure", "key": "CONNECTION"}}
    });
    let round = Round::new(
        &[("azure", &[("CONNECTION", connection.as_bytes())])],
        configuration.clone(),
    )
    .await;
    round.round_trip().await;
    round.assert_log_clean(&[&key]);

    // Azurite checks the key: a wrong one in the Secret is refused, and not logged either.
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
    let wrong = connection.replace(&key, wrong_key);
    let round = Round::new(
        &[("azure", &[("CONNECTION", wrong.as_bytes())])],
        configuration,
    )
    .await;
    let archived = round.archive().await;
    assert_eq!(archived.code, Some(4), "{archived:?}");
    round.assert_log_clean(&[wrong_key, &key]);
}

#[tokio::test]
async fn azure_sas_token_from_a_secret() {
    let Some((endpoint, connection, key)) = azurite() else {
        return;
    };
    let container = unique("kube");
    let Some(()) = create_azure_container(&connection, &container) else {
        return;
    };
    let Some(sas) = azurite_sas(&connection) else {
        return;
    };
    let signature = sas
        .split('&')
        .find_map(|pair| pair.strip_prefix("sig="))
        .expect("a signature in the SAS")
        .to_owned();
    let destination = format!("{endpoint}/{container}/cluster");

    // An emulated endpoint (not *.blob.core.windows.net) needs a connection string, in
    // Barman as in ours: the SAS token reaches Azurite inside one.
    let sas_connection = format!("BlobEndpoint={endpoint};SharedAccessSignature={sas};");
    let round = Round::new(
        &[("azure", &[("CONNECTION", sas_connection.as_bytes())])],
        json!({
            "destinationPath": destination,
            "azureCredentials": {"connectionString": {"name": "azure", "key": "CONNECTION"}}
        }),
    )
    .await;
    round.round_trip().await;
    round.assert_log_clean(&[&signature, &key]);

    // Azurite checks the signature: a tampered one is refused.
    let first = if signature.starts_with('X') { 'Y' } else { 'X' };
    let tampered_signature = format!("{first}{}", &signature[1..]);
    let tampered = sas_connection.replace(&signature, &tampered_signature);
    let round = Round::new(
        &[("azure", &[("CONNECTION", tampered.as_bytes())])],
        json!({
            "destinationPath": destination,
            "azureCredentials": {"connectionString": {"name": "azure", "key": "CONNECTION"}}
        }),
    )
    .await;
    let archived = round.archive().await;
    assert_eq!(archived.code, Some(4), "{archived:?}");
    round.assert_log_clean(&[&signature, &tampered_signature, &key]);

    // `storageAccount` + `storageSasToken`: the variables are set as the plugin sets them,
    // and the command refuses an emulated endpoint without a connection string before any
    // request (exit 4), naming the variable to set.
    let round = Round::new(
        &[(
            "azure",
            &[
                ("ACCOUNT", AZURITE_ACCOUNT.as_bytes()),
                ("SAS", sas.as_bytes()),
            ],
        )],
        json!({
            "destinationPath": destination,
            "azureCredentials": {
                "storageAccount": {"name": "azure", "key": "ACCOUNT"},
                "storageSasToken": {"name": "azure", "key": "SAS"}
            }
        }),
    )
    .await;
    let env = round.env().await;
    assert!(env.contains(&("AZURE_STORAGE_SAS_TOKEN".into(), sas.clone())));
    assert!(env.contains(&("AZURE_STORAGE_ACCOUNT".into(), AZURITE_ACCOUNT.into())));
    let archived = round.archive().await;
    assert_eq!(archived.code, Some(4), "{archived:?}");
    let line = archived.last_error_line.unwrap_or_default();
    assert!(line.contains("AZURE_STORAGE_CONNECTION_STRING"), "{line}");
    round.assert_log_clean(&[&signature, &key]);
}

/// A new bucket on the GCS emulator at `endpoint`.
pub(crate) fn create_gcs_bucket(endpoint: &str) -> String {
    let bucket = unique("kube");
    let body = format!("{{\"name\": \"{bucket}\"}}");
    run_ok(
        Command::new("curl")
            .args(["-sf", "-o", "/dev/null", "-X", "POST"])
            .args(["-H", "Content-Type: application/json", "-d", &body])
            .arg(format!("{endpoint}/storage/v1/b?project=test")),
        "create the bucket",
    );
    bucket
}

/// A service-account key as GCP issues it, its private key [`GCS_PRIVATE_KEY`]. The emulator
/// takes anonymous requests, so the tools do not sign with it there (they do against GCS).
pub(crate) fn gcs_key() -> String {
    json!({
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "k8sRoundKeyId",
        "private_key": format!("-----BEGIN PRIVATE KEY-----\n{GCS_PRIVATE_KEY}\n-----END PRIVATE KEY-----\n"),
        "client_email": "sidecar@test.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token"
    })
    .to_string()
}

/// The private key's text in [`gcs_key`], to look for where it must never be.
pub(crate) const GCS_PRIVATE_KEY: &str = "k8sRoundPrivateKey";

#[tokio::test]
async fn gcs_application_credentials_from_a_secret() {
    let Some(endpoint) = required("BCRS_GCS_ENDPOINT") else {
        return;
    };
    let bucket = create_gcs_bucket(&endpoint);
    let key = gcs_key();
    let mut round = Round::new(
        &[("gcs", &[("KEY", key.as_bytes())])],
        json!({
            "destinationPath": format!("gs://{bucket}/cluster"),
            "googleCredentials": {"applicationCredentials": {"name": "gcs", "key": "KEY"}}
        }),
    )
    .await;
    // In a deployment: the ObjectStore's instanceSidecarConfiguration.env.
    round.sidecar_env = vec![("STORAGE_EMULATOR_HOST".into(), endpoint)];
    round.round_trip().await;
    let file = round
        .controller
        .path()
        .join(".application_credentials.json");
    assert_eq!(std::fs::read_to_string(file).unwrap(), key);
    round.assert_log_clean(&[GCS_PRIVATE_KEY]);
}
