//! `credentials::environment` with the Secrets in the API stand-in: the variables for each
//! provider block as the plugin's Go library sets them (architecture §7), the GCS key file,
//! and errors that never carry a Secret's value.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnpg_plugin::credentials::{self, environment};
use cnpg_plugin::kubernetes::Kubernetes;
use cnpg_plugin::objectstore::ObjectStore;
use serde_json::{Value, json};

use crate::support::apiserver::{ApiServer, NAMESPACE};

const STORE: &str = "store";

/// Values distinctive enough to be found in any text they leak into.
const ACCESS_KEY: &str = "AKIAK8SACCESSKEY0001";
const SECRET_KEY: &str = "k8sSecretKey/with+base64=chars";
const SESSION: &str = "k8sSessionToken0001";
const ACCOUNT_KEY: &str = "k8sAccountKeyZZZZ==";
const SAS: &str = "sv=2026-01-01&sig=k8sSasSignature0001";
const CONNECTION: &str = "DefaultEndpointsProtocol=http;AccountName=acct;AccountKey=k8sConnKey==;";
const GCS_KEY: &str = r#"{"type": "service_account", "private_key": "k8sGcsPrivateKey"}"#;
const VALUES: [&str; 7] = [
    ACCESS_KEY,
    SECRET_KEY,
    SESSION,
    ACCOUNT_KEY,
    SAS,
    "k8sConnKey",
    "k8sGcsPrivateKey",
];

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

fn store(configuration: Value) -> ObjectStore {
    serde_json::from_value(json!({
        "apiVersion": "barmancloud.cnpg.io/v1",
        "kind": "ObjectStore",
        "metadata": {"name": STORE, "namespace": NAMESPACE},
        "spec": {"configuration": configuration}
    }))
    .unwrap()
}

fn key(name: &str, key: &str) -> Value {
    json!({"name": name, "key": key})
}

/// The stand-in with every Secret the tests name.
async fn setup() -> (ApiServer, Kubernetes) {
    let api = ApiServer::start();
    api.put_secret(
        "aws",
        &[
            ("ID", ACCESS_KEY.as_bytes()),
            ("SECRET", SECRET_KEY.as_bytes()),
            ("REGION", b"eu-west-3"),
            ("TOKEN", SESSION.as_bytes()),
        ],
    );
    api.put_secret(
        "azure",
        &[
            ("ACCOUNT", b"acct"),
            ("KEY", ACCOUNT_KEY.as_bytes()),
            ("SAS", SAS.as_bytes()),
            ("CONNECTION", CONNECTION.as_bytes()),
        ],
    );
    api.put_secret("gcs", &[("KEY", GCS_KEY.as_bytes())]);
    api.put_secret("binary", &[("ID", &[0xff, 0xfe, 0x00])]);
    let kubernetes = Kubernetes::with_config(NAMESPACE, api.config().await);
    (api, kubernetes)
}

async fn env_of(kubernetes: &Kubernetes, configuration: Value) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    environment(kubernetes, &store(configuration), dir.path())
        .await
        .unwrap()
}

async fn error_of(kubernetes: &Kubernetes, configuration: Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let message = environment(kubernetes, &store(configuration), dir.path())
        .await
        .unwrap_err()
        .to_string();
    assert!(!message.contains('\n'), "{message}");
    for value in VALUES {
        assert!(!message.contains(value), "{message}");
    }
    message
}

#[tokio::test]
async fn s3_keys_region_and_session_token() {
    let (_api, kubernetes) = setup().await;
    let keys = json!({"destinationPath": "s3://b/", "s3Credentials": {
        "accessKeyId": key("aws", "ID"), "secretAccessKey": key("aws", "SECRET")}});
    assert_eq!(
        env_of(&kubernetes, keys).await,
        env(&[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        ])
    );
    let all = json!({"destinationPath": "s3://b/", "endpointCA": key("ca", "ca.crt"),
        "s3Credentials": {
            "accessKeyId": key("aws", "ID"), "secretAccessKey": key("aws", "SECRET"),
            "region": key("aws", "REGION"), "sessionToken": key("aws", "TOKEN")}});
    // The plugin's order: CA bundle, region, token, key id, secret key.
    assert_eq!(
        env_of(&kubernetes, all).await,
        env(&[
            ("AWS_CA_BUNDLE", "/barman-certificates/store/barman-ca.crt"),
            ("AWS_DEFAULT_REGION", "eu-west-3"),
            ("AWS_SESSION_TOKEN", SESSION),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        ])
    );
}

#[tokio::test]
async fn an_iam_role_reads_no_secret() {
    let (api, kubernetes) = setup().await;
    let iam = json!({"destinationPath": "s3://b/", "endpointCA": key("ca", "ca.crt"),
        "s3Credentials": {"inheritFromIAMRole": true}});
    assert_eq!(
        env_of(&kubernetes, iam).await,
        env(&[("AWS_CA_BUNDLE", "/barman-certificates/store/barman-ca.crt")])
    );
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

#[tokio::test]
async fn s3_needs_both_keys() {
    let (_api, kubernetes) = setup().await;
    let no_secret = json!({"destinationPath": "s3://b/",
        "s3Credentials": {"accessKeyId": key("aws", "ID")}});
    assert_eq!(
        error_of(&kubernetes, no_secret).await,
        "ObjectStore default/store: s3Credentials has no secretAccessKey; set it next to \
         accessKeyId"
    );
    let no_id = json!({"destinationPath": "s3://b/",
        "s3Credentials": {"secretAccessKey": key("aws", "SECRET")}});
    assert!(
        error_of(&kubernetes, no_id)
            .await
            .contains("s3Credentials has no accessKeyId")
    );
    let wrong_key = json!({"destinationPath": "s3://b/", "s3Credentials": {
        "accessKeyId": key("aws", "ID"), "secretAccessKey": key("aws", "NOPE")}});
    assert_eq!(
        error_of(&kubernetes, wrong_key).await,
        "Secret default/aws has no key \"NOPE\"; add the key to the Secret or fix the key \
         the ObjectStore names"
    );
}

#[tokio::test]
async fn azure_sets_each_referenced_secret_only() {
    let (_api, kubernetes) = setup().await;
    let url = "https://acct.blob.core.windows.net/c/p";
    let connection = json!({"destinationPath": url, "endpointCA": key("ca", "ca.crt"),
        "azureCredentials": {"connectionString": key("azure", "CONNECTION")}});
    assert_eq!(
        env_of(&kubernetes, connection).await,
        env(&[
            (
                "REQUESTS_CA_BUNDLE",
                "/barman-certificates/store/barman-ca.crt"
            ),
            ("AZURE_STORAGE_CONNECTION_STRING", CONNECTION)
        ])
    );
    let account_key = json!({"destinationPath": url, "azureCredentials": {
        "storageAccount": key("azure", "ACCOUNT"), "storageKey": key("azure", "KEY")}});
    assert_eq!(
        env_of(&kubernetes, account_key).await,
        env(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_KEY", ACCOUNT_KEY)
        ])
    );
    let sas = json!({"destinationPath": url, "azureCredentials": {
        "storageAccount": key("azure", "ACCOUNT"), "storageSasToken": key("azure", "SAS")}});
    assert_eq!(
        env_of(&kubernetes, sas).await,
        env(&[
            ("AZURE_STORAGE_ACCOUNT", "acct"),
            ("AZURE_STORAGE_SAS_TOKEN", SAS)
        ])
    );
    // All four, in the library's order.
    let all = json!({"destinationPath": url, "azureCredentials": {
        "connectionString": key("azure", "CONNECTION"), "storageSasToken": key("azure", "SAS"),
        "storageKey": key("azure", "KEY"), "storageAccount": key("azure", "ACCOUNT")}});
    let names: Vec<String> = env_of(&kubernetes, all)
        .await
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        [
            "AZURE_STORAGE_ACCOUNT",
            "AZURE_STORAGE_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "AZURE_STORAGE_CONNECTION_STRING"
        ]
    );
}

#[tokio::test]
async fn an_azure_identity_reads_no_secret() {
    let (api, kubernetes) = setup().await;
    for identity in ["inheritFromAzureAD", "useDefaultAzureCredentials"] {
        let configuration = json!({"destinationPath": "https://a.blob.core.windows.net/c",
            "azureCredentials": {identity: true, "storageAccount": key("azure", "ACCOUNT")}});
        assert_eq!(env_of(&kubernetes, configuration).await, env(&[]));
    }
    assert!(api.requests().is_empty(), "{:?}", api.requests());
}

#[tokio::test]
async fn a_gcs_key_goes_to_a_private_file() {
    let (_api, kubernetes) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let configuration = json!({"destinationPath": "gs://b/p", "endpointCA": key("ca", "c"),
        "googleCredentials": {"applicationCredentials": key("gcs", "KEY")}});
    let got = environment(&kubernetes, &store(configuration), dir.path())
        .await
        .unwrap();
    let file = dir.path().join(".application_credentials.json");
    // No CA variable for GCS, as in the library.
    assert_eq!(
        got,
        env(&[("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap())])
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), GCS_KEY);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // Workload identity afterwards: the old key is removed and nothing is set.
    let gke = json!({"destinationPath": "gs://b/p", "googleCredentials": {"gkeEnvironment": true}});
    let got = environment(&kubernetes, &store(gke.clone()), dir.path())
        .await
        .unwrap();
    assert!(got.is_empty(), "{got:?}");
    assert!(!file.exists());
    // Removing a file that is not there is fine.
    environment(&kubernetes, &store(gke), dir.path())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_gcs_file_cannot_be_written() {
    let (_api, kubernetes) = setup().await;
    let configuration = json!({"destinationPath": "gs://b/p",
        "googleCredentials": {"applicationCredentials": key("gcs", "KEY")}});
    let message = environment(
        &kubernetes,
        &store(configuration),
        Path::new("/nonexistent/controller"),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        message.starts_with(
            "write the Google credentials file /nonexistent/controller/.application_credentials.json: "
        ),
        "{message}"
    );
    assert!(!message.contains("k8sGcsPrivateKey"));
}

#[tokio::test]
async fn a_store_without_credentials_is_refused() {
    let (_api, kubernetes) = setup().await;
    assert_eq!(
        error_of(&kubernetes, json!({"destinationPath": "s3://b/"})).await,
        "ObjectStore default/store: no credentials defined; set s3Credentials, \
         azureCredentials or googleCredentials in spec.configuration"
    );
    assert!(
        error_of(
            &kubernetes,
            json!({"destinationPath": "gs://b/", "googleCredentials": {}})
        )
        .await
        .contains("googleCredentials sets neither applicationCredentials nor gkeEnvironment")
    );
}

#[tokio::test]
async fn a_value_that_is_not_text_is_named_not_shown() {
    let (_api, kubernetes) = setup().await;
    let configuration = json!({"destinationPath": "s3://b/", "s3Credentials": {
        "accessKeyId": key("binary", "ID"), "secretAccessKey": key("aws", "SECRET")}});
    assert!(
        error_of(&kubernetes, configuration)
            .await
            .starts_with("Secret default/binary key \"ID\" is not UTF-8 text")
    );
}

#[tokio::test]
async fn a_forbidden_secret_is_reported_as_forbidden() {
    let (api, kubernetes) = setup().await;
    api.forbid_secret("aws");
    let configuration = json!({"destinationPath": "s3://b/", "s3Credentials": {
        "accessKeyId": key("aws", "ID"), "secretAccessKey": key("aws", "SECRET")}});
    let dir = tempfile::tempdir().unwrap();
    let error = environment(&kubernetes, &store(configuration.clone()), dir.path())
        .await
        .unwrap_err();
    // The WAL flows answer FAILED_PRECONDITION on this, as the plugin.
    assert!(error.is_forbidden(), "{error:?}");
    error_of(&kubernetes, configuration).await;
}

#[tokio::test]
async fn the_cloud_provider_follows_the_block() {
    let args = |configuration: Value| {
        credentials::cloud_provider_args(&store(configuration).spec.configuration)
    };
    assert_eq!(
        args(json!({"destinationPath": "s3://b/", "s3Credentials": {"inheritFromIAMRole": true}})),
        ["--cloud-provider", "aws-s3"]
    );
    assert_eq!(
        args(json!({"destinationPath": "gs://b/", "googleCredentials": {"gkeEnvironment": true}})),
        ["--cloud-provider", "google-cloud-storage"]
    );
    assert_eq!(
        args(
            json!({"destinationPath": "https://a.blob.core.windows.net/c",
            "azureCredentials": {"inheritFromAzureAD": true}})
        ),
        [
            "--cloud-provider",
            "azure-blob-storage",
            "--credential",
            "managed-identity"
        ]
    );
}
