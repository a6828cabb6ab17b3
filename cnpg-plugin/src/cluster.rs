//! The subset of CloudNativePG's `Cluster` the sidecar reads (it arrives as JSON in every
//! CNPG-I request), and what the plugin derives from it: which ObjectStore and server name
//! serve archiving, recovery and a replica cluster's source.
//!
//! Unknown fields are ignored: the sidecar never writes a Cluster back.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::metadata::PLUGIN_NAME;

/// The annotation that, set to `enabled`, turns the empty-archive check off.
pub const SKIP_EMPTY_WAL_ARCHIVE_CHECK: &str = "cnpg.io/skipEmptyWalArchiveCheck";

/// A CloudNativePG Cluster, as far as the sidecar reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    /// `postgresql.cnpg.io/v1`, or a fork's group.
    #[serde(default)]
    pub api_version: String,
    /// `Cluster`.
    #[serde(default)]
    pub kind: String,
    /// Name, namespace, uid, annotations.
    #[serde(default)]
    pub metadata: ClusterMetadata,
    /// The spec fields read.
    #[serde(default)]
    pub spec: ClusterSpec,
    /// The status fields read.
    #[serde(default)]
    pub status: ClusterStatus,
}

/// `metadata` of a Cluster.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClusterMetadata {
    /// The Cluster's name: the default server name.
    #[serde(default)]
    pub name: String,
    /// Its namespace: every ObjectStore and Secret is looked up there.
    #[serde(default)]
    pub namespace: String,
    /// Recorded in each backup's metadata, so retention only deletes its own Backups.
    #[serde(default)]
    pub uid: String,
    /// [`SKIP_EMPTY_WAL_ARCHIVE_CHECK`] among others.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `spec` of a Cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// The plugins the Cluster uses, ours among them.
    #[serde(default)]
    pub plugins: Vec<PluginConfiguration>,
    /// How the Cluster was created.
    #[serde(default)]
    pub bootstrap: Option<Bootstrap>,
    /// Servers the Cluster recovers or replicates from.
    #[serde(default)]
    pub external_clusters: Vec<ExternalCluster>,
    /// Set on a replica cluster.
    #[serde(default)]
    pub replica: Option<ReplicaClusterConfiguration>,
    /// Present when WAL lives on its own volume.
    #[serde(default)]
    pub wal_storage: Option<serde_json::Value>,
}

/// One entry of `spec.plugins` (or an external cluster's `plugin`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfiguration {
    /// The plugin's name.
    pub name: String,
    /// Absent means enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// CloudNativePG's own switch; not read by the plugin.
    #[serde(default, rename = "isWALArchiver")]
    pub is_wal_archiver: Option<bool>,
    /// `barmanObjectName`, `serverName`.
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

/// `spec.bootstrap`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Bootstrap {
    /// Recovery from a backup.
    #[serde(default)]
    pub recovery: Option<Recovery>,
}

/// `spec.bootstrap.recovery`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recovery {
    /// The external cluster recovered from.
    #[serde(default)]
    pub source: String,
    /// Point-in-time recovery.
    #[serde(default)]
    pub recovery_target: Option<RecoveryTarget>,
}

/// `spec.bootstrap.recovery.recoveryTarget`: the fields that choose the base backup.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecoveryTarget {
    /// An exact backup ID.
    #[serde(default, rename = "backupID")]
    pub backup_id: String,
    /// RFC 3339 (no zone = UTC).
    #[serde(default, rename = "targetTime")]
    pub target_time: String,
    /// An LSN such as `0/3000000`.
    #[serde(default, rename = "targetLSN")]
    pub target_lsn: String,
    /// A timeline number or `latest`.
    #[serde(default, rename = "targetTLI")]
    pub target_tli: String,
}

/// One entry of `spec.externalClusters`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalCluster {
    /// Referred to by `bootstrap.recovery.source` and `replica.source`.
    pub name: String,
    /// The plugin that reads this server's archive.
    #[serde(default)]
    pub plugin: Option<PluginConfiguration>,
    /// libpq parameters: present when the server can be streamed from.
    #[serde(default)]
    pub connection_parameters: BTreeMap<String, String>,
}

/// `spec.replica`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReplicaClusterConfiguration {
    /// Set explicitly: whether this is a replica cluster.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The external cluster replicated from.
    #[serde(default)]
    pub source: String,
    /// Distributed topology: the name of the primary cluster.
    #[serde(default)]
    pub primary: String,
    /// Distributed topology: this cluster's name (default: its own name).
    #[serde(default, rename = "self")]
    pub self_name: String,
}

/// `status` of a Cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The instance that is primary; empty while the Cluster bootstraps.
    #[serde(default)]
    pub current_primary: String,
}

/// What the plugin reads from a Cluster: the ObjectStore and server name of each role.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginSettings {
    /// The store archived to and backed up to (`barmanObjectName`), if any.
    pub barman_object_name: Option<String>,
    /// The server name in that store.
    pub server_name: String,
    /// The store recovered from at bootstrap, if the recovery source uses this plugin.
    pub recovery_barman_object_name: Option<String>,
    /// Its server name (default: this Cluster's name).
    pub recovery_server_name: String,
    /// A replica cluster's source store, if its source uses this plugin.
    pub replica_source_barman_object_name: Option<String>,
    /// Its server name (default: this Cluster's name).
    pub replica_source_server_name: String,
}

impl PluginConfiguration {
    /// True unless `enabled: false`.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

impl Cluster {
    /// Parses the `cluster_definition` of a CNPG-I request.
    ///
    /// # Errors
    /// serde's error when the bytes are not a Cluster's JSON.
    pub fn from_json(definition: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(definition)
    }

    /// Our entry in `spec.plugins` (found by name even when disabled, as the plugin does).
    pub fn plugin(&self) -> Option<&PluginConfiguration> {
        self.spec.plugins.iter().find(|p| p.name == PLUGIN_NAME)
    }

    /// The external cluster of that name.
    fn external_cluster(&self, name: &str) -> Option<&ExternalCluster> {
        self.spec.external_clusters.iter().find(|c| c.name == name)
    }

    /// `bootstrap.recovery.source`'s external cluster, if any.
    pub fn recovery_source(&self) -> Option<&ExternalCluster> {
        let recovery = self.spec.bootstrap.as_ref()?.recovery.as_ref()?;
        self.external_cluster(&recovery.source)
    }

    /// `replica.source`'s external cluster, if any.
    pub fn replica_source(&self) -> Option<&ExternalCluster> {
        let replica = self.spec.replica.as_ref()?;
        self.external_cluster(&replica.source)
    }

    /// CloudNativePG's `IsReplica`: `replica.enabled` when set, else whether the distributed
    /// topology names another cluster as primary.
    pub fn is_replica(&self) -> bool {
        let Some(replica) = &self.spec.replica else {
            return false;
        };
        if let Some(enabled) = replica.enabled {
            return enabled;
        }
        if replica.primary.is_empty() {
            return false;
        }
        let self_name = if replica.self_name.is_empty() {
            &self.metadata.name
        } else {
            &replica.self_name
        };
        *self_name != replica.primary
    }

    /// Whether the empty-archive check is turned off by the annotation.
    pub fn skips_empty_wal_archive_check(&self) -> bool {
        self.metadata
            .annotations
            .get(SKIP_EMPTY_WAL_ARCHIVE_CHECK)
            .is_some_and(|value| value == "enabled")
    }

    /// The plugin's settings, as the plugin's `NewFromCluster` derives them.
    pub fn plugin_settings(&self) -> PluginSettings {
        let own = self.plugin();
        let server_name = own
            .filter(|p| p.is_enabled())
            .and_then(|p| p.parameters.get("serverName"))
            .cloned()
            .unwrap_or_else(|| self.metadata.name.clone());
        let (recovery_barman_object_name, recovery_server_name) =
            self.source_settings(self.recovery_source());
        let (replica_source_barman_object_name, replica_source_server_name) =
            self.source_settings(self.replica_source());
        PluginSettings {
            barman_object_name: own.and_then(|p| non_empty(p.parameters.get("barmanObjectName"))),
            server_name,
            recovery_barman_object_name,
            recovery_server_name,
            replica_source_barman_object_name,
            replica_source_server_name,
        }
    }

    /// Store and server name of an external cluster read through this plugin; the server
    /// name defaults to **this** Cluster's name, as in the plugin.
    fn source_settings(&self, source: Option<&ExternalCluster>) -> (Option<String>, String) {
        let Some(parameters) = source
            .and_then(|c| c.plugin.as_ref())
            .filter(|p| p.name == PLUGIN_NAME)
            .map(|p| &p.parameters)
        else {
            return (None, String::new());
        };
        let server_name =
            non_empty(parameters.get("serverName")).unwrap_or_else(|| self.metadata.name.clone());
        (non_empty(parameters.get("barmanObjectName")), server_name)
    }
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster(value: serde_json::Value) -> Cluster {
        Cluster::from_json(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn archiving_store_and_server_name() {
        let c = cluster(json!({
            "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
            "metadata": {"name": "pg", "namespace": "default", "uid": "u"},
            "spec": {"instances": 3, "plugins": [
                {"name": "other", "parameters": {"barmanObjectName": "x"}},
                {"name": PLUGIN_NAME, "isWALArchiver": true,
                 "parameters": {"barmanObjectName": "minio-store", "serverName": "pg-a"}}
            ]},
            "status": {"currentPrimary": "pg-1"}
        }));
        let settings = c.plugin_settings();
        assert_eq!(settings.barman_object_name.as_deref(), Some("minio-store"));
        assert_eq!(settings.server_name, "pg-a");
        assert_eq!(settings.recovery_barman_object_name, None);
        assert_eq!(c.status.current_primary, "pg-1");
    }

    #[test]
    fn a_disabled_entry_keeps_its_store_but_not_its_server_name() {
        let c = cluster(json!({
            "metadata": {"name": "pg"},
            "spec": {"plugins": [{"name": PLUGIN_NAME, "enabled": false,
                "parameters": {"barmanObjectName": "s", "serverName": "other"}}]}
        }));
        let settings = c.plugin_settings();
        assert_eq!(settings.barman_object_name.as_deref(), Some("s"));
        assert_eq!(settings.server_name, "pg");
    }

    #[test]
    fn recovery_and_replica_sources_default_to_this_clusters_name() {
        let c = cluster(json!({
            "metadata": {"name": "pg-new"},
            "spec": {
                "bootstrap": {"recovery": {"source": "origin"}},
                "replica": {"enabled": true, "source": "origin"},
                "externalClusters": [{"name": "origin", "plugin": {"name": PLUGIN_NAME,
                    "parameters": {"barmanObjectName": "old-store"}}}]
            }
        }));
        let settings = c.plugin_settings();
        assert_eq!(
            settings.recovery_barman_object_name.as_deref(),
            Some("old-store")
        );
        assert_eq!(settings.recovery_server_name, "pg-new");
        assert_eq!(
            settings.replica_source_barman_object_name.as_deref(),
            Some("old-store")
        );
        assert!(c.is_replica());
        assert_eq!(settings.barman_object_name, None);
    }

    #[test]
    fn an_external_cluster_of_another_plugin_is_not_ours() {
        let c = cluster(json!({
            "metadata": {"name": "pg"},
            "spec": {"bootstrap": {"recovery": {"source": "origin"}},
                "externalClusters": [{"name": "origin", "plugin": {"name": "x",
                    "parameters": {"barmanObjectName": "s"}}}]}
        }));
        assert_eq!(c.plugin_settings().recovery_barman_object_name, None);
    }

    #[test]
    fn replica_in_a_distributed_topology() {
        let replica = |spec: serde_json::Value| {
            cluster(json!({"metadata": {"name": "a"}, "spec": {"replica": spec}})).is_replica()
        };
        assert!(!replica(json!({"primary": "a", "source": "b"})));
        assert!(replica(json!({"primary": "b", "source": "b"})));
        assert!(!replica(
            json!({"primary": "b", "self": "b", "source": "b"})
        ));
        assert!(!replica(json!({"enabled": false, "primary": "b"})));
    }

    #[test]
    fn the_annotation_skips_the_empty_archive_check() {
        let annotated = |value: &str| {
            cluster(json!({"metadata": {"annotations": {SKIP_EMPTY_WAL_ARCHIVE_CHECK: value}}}))
                .skips_empty_wal_archive_check()
        };
        assert!(annotated("enabled"));
        assert!(!annotated("disabled"));
    }
}
