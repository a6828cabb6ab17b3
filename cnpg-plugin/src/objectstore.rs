//! The `ObjectStore` resource (`barmancloud.cnpg.io/v1`): where a Cluster's backups and WAL
//! go, the credentials' Secret references, and the status the sidecar maintains.
//!
//! Only the fields the sidecar reads are typed; the rest of the object is kept as JSON in
//! [`ObjectStore::rest`] and in the status's [`ObjectStoreStatus::rest`], so an object the
//! sidecar writes back loses nothing a newer operator put there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// API group of the resource.
pub const GROUP: &str = "barmancloud.cnpg.io";
/// Its only served version.
pub const VERSION: &str = "v1";
/// Its plural, the path segment of its URLs.
pub const PLURAL: &str = "objectstores";

/// One `ObjectStore` object as read from (and written back to) the API.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ObjectStore {
    /// `metadata.name`, `namespace`, `resourceVersion` (the optimistic lock of a status PUT).
    pub metadata: Metadata,
    /// The store's settings.
    pub spec: ObjectStoreSpec,
    /// What the sidecar records about the backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ObjectStoreStatus>,
    /// `apiVersion`, `kind` and anything else, written back unchanged.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// The part of `metadata` the sidecar uses; the rest is kept.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The object's name.
    #[serde(default)]
    pub name: String,
    /// Its namespace (the Cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The version a PUT must name; the API answers 409 when the object changed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Labels, uid, annotations, …: written back unchanged.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `spec` of an ObjectStore.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreSpec {
    /// The barman-cloud settings.
    pub configuration: BarmanObjectStoreConfiguration,
    /// A recovery window such as `30d` (`w` weeks, `m` months).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<String>,
    /// `instanceSidecarConfiguration` and anything else: not read by the instance sidecar
    /// (the operator applies it to the Pod), kept.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// `spec.configuration`: one Barman Cloud destination and how to reach it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BarmanObjectStoreConfiguration {
    /// `s3://bucket/path`, `https://account.blob.core.windows.net/container/path`, `gs://…`.
    pub destination_path: String,
    /// `--endpoint-url` of every command.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "endpointURL"
    )]
    pub endpoint_url: Option<String>,
    /// The Secret key holding the endpoint's CA bundle, mounted by the kubelet under
    /// `/barman-certificates/<store>/barman-ca.crt` (the sidecar never reads the Secret).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "endpointCA"
    )]
    pub endpoint_ca: Option<SecretKeySelector>,
    /// Forbidden by the CRD's validation (the Cluster's plugin parameters name the server);
    /// kept for compatibility with the in-tree `barmanObjectStore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// AWS S3 or an S3-compatible server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_credentials: Option<S3Credentials>,
    /// Azure Blob Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_credentials: Option<AzureCredentials>,
    /// Google Cloud Storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_credentials: Option<GoogleCredentials>,
    /// How WAL segments are archived and restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal: Option<WalConfiguration>,
    /// How base backups are taken and restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataConfiguration>,
    /// `--tags` of backups and WAL.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// `--history-tags` of `.history` files.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub history_tags: BTreeMap<String, String>,
    /// Fields of a newer CRD, kept.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A key of a Secret in the Cluster's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SecretKeySelector {
    /// The Secret's name.
    pub name: String,
    /// The key in its `data`.
    pub key: String,
}

/// `s3Credentials`: either keys in Secrets or the Pod's IAM identity.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<SecretKeySelector>,
    /// `AWS_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<SecretKeySelector>,
    /// `AWS_DEFAULT_REGION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<SecretKeySelector>,
    /// `AWS_SESSION_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretKeySelector>,
    /// The SDK's default chain (IRSA and the like): no variable is set.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        rename = "inheritFromIAMRole"
    )]
    pub inherit_from_iam_role: bool,
}

/// `azureCredentials`: a connection string, or an account with a key or a SAS token, or an
/// Azure identity.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AzureCredentials {
    /// `AZURE_STORAGE_CONNECTION_STRING`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_string: Option<SecretKeySelector>,
    /// `AZURE_STORAGE_ACCOUNT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_account: Option<SecretKeySelector>,
    /// `AZURE_STORAGE_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_key: Option<SecretKeySelector>,
    /// `AZURE_STORAGE_SAS_TOKEN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_sas_token: Option<SecretKeySelector>,
    /// `--credential managed-identity`.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        rename = "inheritFromAzureAD"
    )]
    pub inherit_from_azure_ad: bool,
    /// `--credential default`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub use_default_azure_credentials: bool,
}

/// `googleCredentials`: a service-account key in a Secret, or GKE's workload identity.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GoogleCredentials {
    /// The JSON key, written to a 0600 file named by `GOOGLE_APPLICATION_CREDENTIALS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_credentials: Option<SecretKeySelector>,
    /// Rely on the GKE metadata server.
    #[serde(default, skip_serializing_if = "is_false")]
    pub gke_environment: bool,
}

/// `wal`: the options of `barman-cloud-wal-archive` and `-wal-restore`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalConfiguration {
    /// `bzip2`, `gzip`, `lz4`, `snappy`, `xz` or `zstd` → `--<value>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// `AES256` or `aws:kms` → `-e <value>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// Segments archived at once, and segments prefetched on restore (0 or absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<u32>,
    /// Appended to wal-archive's options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archive_additional_command_args: Vec<String>,
    /// Appended to wal-restore's arguments, after the two positionals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_additional_command_args: Vec<String>,
}

/// `data`: the options of `barman-cloud-backup` and `-restore`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataConfiguration {
    /// `bzip2`, `gzip`, `lz4` or `snappy` → `--<value>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// `AES256` or `aws:kms` → `--encryption <value>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
    /// `--jobs N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<i32>,
    /// `--immediate-checkpoint`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub immediate_checkpoint: bool,
    /// Appended to barman-cloud-backup's options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_command_args: Vec<String>,
    /// Appended to barman-cloud-restore's options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restore_additional_command_args: Vec<String>,
}

/// `status` of an ObjectStore.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStoreStatus {
    /// Per server name: the times the sidecar records after each backup.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_recovery_window: BTreeMap<String, RecoveryWindow>,
    /// Anything else, kept.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// One server's entry in `status.serverRecoveryWindow`; times are RFC 3339 strings, as the
/// API stores them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryWindow {
    /// End time of the oldest completed backup in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_recoverability_point: Option<String>,
    /// End time of the newest completed backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_successful_backup_time: Option<String>,
    /// When the last Backup call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failed_backup_time: Option<String>,
    /// The misspelled key of plugin versions up to 0.5 and anything newer, kept.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl BarmanObjectStoreConfiguration {
    /// `maxParallel`, at least 1.
    pub fn max_parallel(&self) -> usize {
        self.wal
            .as_ref()
            .and_then(|wal| wal.max_parallel)
            .map_or(1, |n| n.max(1) as usize)
    }
}

/// Bools the CRD leaves out when false stay out when written back.
fn is_false(value: &bool) -> bool {
    !value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_json() -> Value {
        json!({
            "apiVersion": "barmancloud.cnpg.io/v1",
            "kind": "ObjectStore",
            "metadata": {"name": "minio-store", "namespace": "default",
                         "resourceVersion": "42", "uid": "u-1", "generation": 3},
            "spec": {
                "configuration": {
                    "destinationPath": "s3://backups/",
                    "endpointURL": "http://minio:9000",
                    "endpointCA": {"name": "minio-ca", "key": "ca.crt"},
                    "s3Credentials": {
                        "accessKeyId": {"name": "minio", "key": "ACCESS_KEY_ID"},
                        "secretAccessKey": {"name": "minio", "key": "ACCESS_SECRET_KEY"}
                    },
                    "wal": {"compression": "gzip", "maxParallel": 4},
                    "data": {"jobs": 2, "immediateCheckpoint": true},
                    "tags": {"env": "test"},
                    "aFutureField": [1, 2]
                },
                "retentionPolicy": "30d",
                "instanceSidecarConfiguration": {"logLevel": "debug"}
            },
            "status": {"serverRecoveryWindow": {"pg": {
                "firstRecoverabilityPoint": "2026-12-01T10:00:00Z",
                "lastSuccussfulBackupTime": "2025-01-01T00:00:00Z"
            }}}
        })
    }

    #[test]
    fn reads_the_fields_the_sidecar_uses() {
        let store: ObjectStore = serde_json::from_value(store_json()).unwrap();
        assert_eq!(store.metadata.name, "minio-store");
        assert_eq!(store.metadata.resource_version.as_deref(), Some("42"));
        let configuration = &store.spec.configuration;
        assert_eq!(configuration.destination_path, "s3://backups/");
        assert_eq!(
            configuration.endpoint_url.as_deref(),
            Some("http://minio:9000")
        );
        assert_eq!(configuration.max_parallel(), 4);
        let s3 = configuration.s3_credentials.as_ref().unwrap();
        assert_eq!(s3.access_key_id.as_ref().unwrap().key, "ACCESS_KEY_ID");
        assert!(!s3.inherit_from_iam_role);
        assert_eq!(configuration.data.as_ref().unwrap().jobs, Some(2));
        assert_eq!(store.spec.retention_policy.as_deref(), Some("30d"));
    }

    #[test]
    fn writing_back_keeps_every_field_it_does_not_know() {
        let store: ObjectStore = serde_json::from_value(store_json()).unwrap();
        assert_eq!(serde_json::to_value(&store).unwrap(), store_json());
    }

    #[test]
    fn max_parallel_is_at_least_one() {
        let mut configuration = BarmanObjectStoreConfiguration::default();
        assert_eq!(configuration.max_parallel(), 1);
        configuration.wal = Some(WalConfiguration::default());
        assert_eq!(configuration.max_parallel(), 1);
    }
}
