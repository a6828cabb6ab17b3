//! The catalog maintenance loop of the instance role (architecture §5.4), a background task
//! of `manager instance` that lives as long as the gRPC server.
//!
//! Every sidecar runs it, but only the current primary's acts: each cycle reads the Cluster,
//! applies the retention policy with `barman-cloud-backup-delete` (a failure is also a
//! Warning Event `RetentionPolicyFailed` on the Cluster, as the plugin records it), lists the
//! catalog, deletes the Cluster's completed plugin `Backup` objects whose backup is no
//! longer in it, and writes the recovery window into the ObjectStore's status. The next
//! cycle comes after the store's `instanceSidecarConfiguration.retentionPolicyIntervalSeconds`;
//! a zero or missing interval, a skipped cycle and any error mean the retry interval (5
//! minutes).
//!
//! Ours, not the plugin's: [`POLICY_VARIABLE`] in the sidecar's environment (set through the
//! store's `instanceSidecarConfiguration.env`, so the upstream CRD is untouched) replaces
//! `retentionPolicy` and accepts `REDUNDANCY n` as well as the CRD's `30d` form
//! (plugin-barman-cloud #677); [`RETRY_VARIABLE`] shortens the retry interval for tests.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::barman::catalog::{self, BarmanBackup};
use crate::barman::command;
use crate::barman::run::{self, Invocation, Stdout};
use crate::cluster::Cluster;
use crate::instance::{Instance, StoreError};
use crate::kubernetes;
use crate::log::Logger;
use crate::metadata::PLUGIN_NAME;
use crate::objectstore::{ObjectStore, RecoveryWindow};

/// The pause after a skipped or failed cycle, or when the store gives no interval (the
/// plugin's `defaultRetentionPolicyInterval`).
pub const RETRY_INTERVAL: Duration = Duration::from_secs(300);

/// Sidecar variable: a retention policy used instead of the store's `retentionPolicy`,
/// `REDUNDANCY n` or `N[dwm]`.
pub const POLICY_VARIABLE: &str = "BARMAN_CLOUD_RETENTION_POLICY";

/// Sidecar variable: the retry interval in seconds instead of [`RETRY_INTERVAL`] (tests).
pub const RETRY_VARIABLE: &str = "BARMAN_CLOUD_RETENTION_RETRY_SECONDS";

/// CloudNativePG's API group and version when the sidecar is not told otherwise.
const CNPG_GROUP: &str = "postgresql.cnpg.io";
const CNPG_VERSION: &str = "v1";

/// The Event's reason and message, and the component that reports it: the plugin's.
const EVENT_REASON: &str = "RetentionPolicyFailed";
const EVENT_MESSAGE: &str = "Retention policy failed";
const EVENT_COMPONENT: &str = "policy-runnable";

/// Why a cycle failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A read or write of the API failed.
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::Error),
    /// The Cluster the API returned is not one.
    #[error("read Cluster {name}: {source}; check CUSTOM_CNPG_GROUP and CUSTOM_CNPG_VERSION")]
    Cluster {
        /// The Cluster's name.
        name: String,
        /// serde's message.
        source: serde_json::Error,
    },
    /// The plugin is enabled on the Cluster but names no store.
    #[error(
        "Cluster {cluster}: invalid configuration, its spec.plugins entry {PLUGIN_NAME:?} has \
         no barmanObjectName parameter; add one naming the ObjectStore"
    )]
    NoObjectStore {
        /// The Cluster's name.
        cluster: String,
    },
    /// The retention policy is not one Barman can be given.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A command could not be started.
    #[error(transparent)]
    Run(#[from] run::Error),
    /// A command exited non-zero.
    #[error("{program} for server {server:?}: exit code {code}{detail}")]
    Failed {
        /// The program.
        program: &'static str,
        /// The server name in the store.
        server: String,
        /// The exit code, or "none (killed by a signal)".
        code: String,
        /// `: ` and its last stderr line, if any.
        detail: String,
    },
    /// backup-list printed something unreadable.
    #[error(transparent)]
    Catalog(#[from] catalog::Error),
    /// Some stale Backups could not be deleted (the others were).
    #[error("delete Backups not in the catalog: {}", .0.join("; "))]
    Delete(Vec<String>),
}

/// A retention policy that cannot be turned into Barman's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "retention policy {policy:?} from {source_name}: not a valid policy; use N followed by d, \
     w or m (30d){redundancy}"
)]
pub struct PolicyError {
    /// The text given.
    pub policy: String,
    /// `retentionPolicy` or the variable's name.
    pub source_name: &'static str,
    /// The other accepted form, named for the variable only.
    redundancy: &'static str,
}

/// The store's `retentionPolicy` (`^[1-9][0-9]*[dwm]$`, the CRD's pattern) as Barman's
/// `RECOVERY WINDOW OF N DAYS|WEEKS|MONTHS`.
///
/// # Errors
/// [`PolicyError`] for any other text.
pub fn recovery_window_policy(policy: &str) -> Result<String, PolicyError> {
    parse_window(policy).ok_or_else(|| PolicyError {
        policy: policy.to_owned(),
        source_name: "the ObjectStore's retentionPolicy",
        redundancy: "",
    })
}

fn parse_window(policy: &str) -> Option<String> {
    let unit = match policy.chars().last()? {
        'd' => "DAYS",
        'w' => "WEEKS",
        'm' => "MONTHS",
        _ => return None,
    };
    let count = &policy[..policy.len() - 1];
    positive(count).then(|| format!("RECOVERY WINDOW OF {count} {unit}"))
}

/// Digits without a leading zero: what the CRD's `[1-9][0-9]*` allows.
fn positive(count: &str) -> bool {
    count.starts_with(|c: char| ('1'..='9').contains(&c))
        && count.bytes().all(|b| b.is_ascii_digit())
}

/// The value of [`POLICY_VARIABLE`]: `REDUNDANCY n` (any case, n ≥ 1) as is, or the short
/// recovery-window form.
///
/// # Errors
/// [`PolicyError`] for any other text.
pub fn override_policy(policy: &str) -> Result<String, PolicyError> {
    let words: Vec<&str> = policy.split_whitespace().collect();
    let parsed = match words.as_slice() {
        [keyword, count] if keyword.eq_ignore_ascii_case("REDUNDANCY") && positive(count) => {
            Some(format!("REDUNDANCY {count}"))
        }
        [short] => parse_window(short),
        _ => None,
    };
    parsed.ok_or_else(|| PolicyError {
        policy: policy.to_owned(),
        source_name: POLICY_VARIABLE,
        redundancy: ", or REDUNDANCY n",
    })
}

/// The policy a cycle applies: the variable's when set, else the store's; `None` when
/// neither is.
///
/// # Errors
/// [`PolicyError`] when the one that applies is invalid.
pub fn effective_policy(
    from_variable: Option<&str>,
    from_store: Option<&str>,
) -> Result<Option<String>, PolicyError> {
    match (
        from_variable.filter(|p| !p.trim().is_empty()),
        from_store.filter(|p| !p.is_empty()),
    ) {
        (Some(variable), _) => override_policy(variable).map(Some),
        (None, Some(store)) => recovery_window_policy(store).map(Some),
        (None, None) => Ok(None),
    }
}

/// Whether the `Backup` object `backup` is one of `cluster`'s, taken by this plugin for it
/// (same Cluster UID, so not by an earlier Cluster of the same name), completed, and no
/// longer in the catalog: the plugin's conditions for deleting it.
pub fn is_gone_from_catalog(backup: &Value, cluster: &Cluster, catalog: &HashSet<&str>) -> bool {
    let status = &backup["status"];
    let metadata = &status["pluginMetadata"];
    backup["spec"]["cluster"]["name"].as_str() == Some(cluster.metadata.name.as_str())
        && status["phase"].as_str() == Some("completed")
        && status["method"].as_str() == Some("plugin")
        && metadata["clusterUID"].as_str() == Some(cluster.metadata.uid.as_str())
        && metadata["pluginName"].as_str() == Some(PLUGIN_NAME)
        && !catalog.contains(status["backupID"].as_str().unwrap_or_default())
}

/// The store's `instanceSidecarConfiguration.retentionPolicyIntervalSeconds`; `None` when
/// missing, zero or negative (the retry interval applies then).
pub fn store_interval(store: &ObjectStore) -> Option<Duration> {
    let seconds = store
        .spec
        .rest
        .get("instanceSidecarConfiguration")?
        .get("retentionPolicyIntervalSeconds")?
        .as_i64()?;
    u64::try_from(seconds)
        .ok()
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}

/// The retry interval: [`RETRY_VARIABLE`] when it is a whole number of seconds (at least
/// 1), else [`RETRY_INTERVAL`].
pub fn retry_interval(value: Option<&str>) -> Duration {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map_or(RETRY_INTERVAL, Duration::from_secs)
}

/// Runs cycles until the task is aborted (the server stops it when it stops).
pub async fn run(instance: Arc<Instance>) {
    let log = instance.log.named("retention");
    let variable = std::env::var(RETRY_VARIABLE).ok();
    let retry = retry_interval(variable.as_deref());
    if variable.is_some() && retry == RETRY_INTERVAL {
        log.warning(
            "Ignoring the retry interval: not a whole number of seconds above 0",
            &[("variable", json!(RETRY_VARIABLE))],
        );
    }
    let policy = std::env::var(POLICY_VARIABLE).ok();
    log.info(
        "Starting retention policy runnable",
        &[("retryInterval", json!(retry.as_secs()))],
    );
    loop {
        let next = match cycle(&instance, &log, policy.as_deref()).await {
            Ok(Some(interval)) => interval,
            Ok(None) => retry,
            Err(error) => {
                log.error(
                    "Retention policy enforcement failed",
                    &[("error", json!(error.to_string()))],
                );
                retry
            }
        };
        log.debug(
            "Next retention policy check",
            &[("seconds", json!(next.as_secs()))],
        );
        tokio::time::sleep(next).await;
    }
}

/// One cycle; `Ok(Some(interval))` when it ran to the end and the store gives an interval.
///
/// # Errors
/// [`Error`] for the first step that fails.
pub async fn cycle(
    instance: &Instance,
    log: &Logger,
    policy_variable: Option<&str>,
) -> Result<Option<Duration>, Error> {
    let config = &instance.config;
    let api_version = format!(
        "{}/{}",
        config.custom_cnpg_group.as_deref().unwrap_or(CNPG_GROUP),
        config
            .custom_cnpg_version
            .as_deref()
            .unwrap_or(CNPG_VERSION)
    );
    let object = instance
        .kubernetes
        .cluster(&api_version, &config.cluster_name)
        .await?;
    let cluster: Cluster = serde_json::from_value(object).map_err(|source| Error::Cluster {
        name: config.cluster_name.clone(),
        source,
    })?;
    if !cluster.plugin().is_some_and(|p| p.is_enabled()) {
        log.debug(
            "Skipping maintenance cycle: plugin is not enabled for backups",
            &[],
        );
        return Ok(None);
    }
    let settings = cluster.plugin_settings();
    let store_name = settings
        .barman_object_name
        .ok_or_else(|| Error::NoObjectStore {
            cluster: cluster.metadata.name.clone(),
        })?;
    let store = instance.kubernetes.object_store(&store_name).await?;
    let interval = store_interval(&store);

    if cluster.status.current_primary != config.pod_name {
        log.info(
            "Skipping retention policy enforcement, not the current primary",
            &[
                ("currentPrimary", json!(cluster.status.current_primary)),
                ("podName", json!(config.pod_name)),
            ],
        );
        return Ok(interval);
    }

    let (store, env) = instance
        .store(&store_name)
        .await
        .map_err(StoreError::into_source)?;
    let configuration = &store.spec.configuration;
    let server = settings.server_name.as_str();

    let policy = effective_policy(policy_variable, store.spec.retention_policy.as_deref());
    match policy {
        Ok(None) => log.info(
            "Skipping retention policy enforcement, no retention policy specified",
            &[],
        ),
        Ok(Some(policy)) => {
            log.info(
                "Applying backup retention policy",
                &[("retentionPolicy", json!(policy))],
            );
            let delete = Invocation {
                program: command::BACKUP_DELETE,
                args: command::backup_delete(configuration, server, &policy),
                env: env.clone(),
            };
            if let Err(error) = run_ok(&delete, log, server, Stdout::Log).await {
                policy_failed(instance, log, &cluster, &api_version, &error).await;
                return Err(error);
            }
        }
        Err(error) => {
            let error = Error::Policy(error);
            policy_failed(instance, log, &cluster, &api_version, &error).await;
            return Err(error);
        }
    }

    let list = Invocation {
        program: command::BACKUP_LIST,
        args: command::backup_list(configuration, server),
        env,
    };
    let listed = BarmanBackup::from_list(&run_ok(&list, log, server, Stdout::Keep).await?)?;
    delete_gone_backups(instance, log, &cluster, &api_version, &listed).await?;

    let (first, last) = catalog::recovery_window(&listed);
    let api_time = |time: chrono::DateTime<Utc>| time.to_rfc3339_opts(SecondsFormat::Secs, true);
    instance
        .kubernetes
        .update_recovery_window(&store_name, server, |window: &mut RecoveryWindow| {
            window.first_recoverability_point = first.map(api_time);
            window.last_successful_backup_time = last.map(api_time);
        })
        .await?;
    Ok(interval)
}

/// Deletes the Backups [`is_gone_from_catalog`] picks; every one is tried, the failures are
/// returned together. One already gone (404) is not a failure.
async fn delete_gone_backups(
    instance: &Instance,
    log: &Logger,
    cluster: &Cluster,
    api_version: &str,
    listed: &[BarmanBackup],
) -> Result<(), Error> {
    let catalog: HashSet<&str> = listed.iter().map(|b| b.backup_id.as_str()).collect();
    let mut failures = Vec::new();
    for backup in instance.kubernetes.backups(api_version).await? {
        if !is_gone_from_catalog(&backup, cluster, &catalog) {
            continue;
        }
        let name = backup["metadata"]["name"].as_str().unwrap_or_default();
        log.info(
            "Deleting backup not in the catalog",
            &[("backup", json!(name))],
        );
        match instance.kubernetes.delete_backup(api_version, name).await {
            Ok(()) => {}
            Err(error) if error.is_not_found() => {}
            Err(error) => failures.push(error.to_string()),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Delete(failures))
    }
}

/// Runs `invocation` and returns its stdout; non-zero is [`Error::Failed`].
async fn run_ok(
    invocation: &Invocation,
    log: &Logger,
    server: &str,
    stdout: Stdout,
) -> Result<Vec<u8>, Error> {
    let finished = invocation.run(log, stdout).await?;
    if finished.success() {
        return Ok(finished.stdout);
    }
    Err(Error::Failed {
        program: invocation.program,
        server: server.to_owned(),
        code: finished
            .code
            .map_or_else(|| "none (killed by a signal)".to_owned(), |c| c.to_string()),
        detail: finished
            .last_error_line
            .map(|line| format!(": {line}"))
            .unwrap_or_default(),
    })
}

/// Logs the failure and posts the Warning Event on the Cluster; an Event that cannot be
/// posted is logged, the cycle's error stays the policy's.
async fn policy_failed(
    instance: &Instance,
    log: &Logger,
    cluster: &Cluster,
    api_version: &str,
    error: &Error,
) {
    log.error(
        "while enforcing retention policies",
        &[("error", json!(error.to_string()))],
    );
    let event = warning_event(cluster, api_version, Utc::now());
    if let Err(error) = instance.kubernetes.create_event(&event).await {
        log.error(
            "Could not post the RetentionPolicyFailed event",
            &[("error", json!(error.to_string()))],
        );
    }
}

/// The Event client-go's recorder would post for the plugin: named after the Cluster and
/// the time, reason `RetentionPolicyFailed`, reported by `policy-runnable`.
pub fn warning_event(cluster: &Cluster, api_version: &str, now: chrono::DateTime<Utc>) -> Value {
    let time = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let nanos = now.timestamp_nanos_opt().unwrap_or_default();
    json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{nanos:x}", cluster.metadata.name),
            "namespace": cluster.metadata.namespace,
        },
        "involvedObject": {
            "apiVersion": api_version,
            "kind": "Cluster",
            "name": cluster.metadata.name,
            "namespace": cluster.metadata.namespace,
            "uid": cluster.metadata.uid,
        },
        "type": "Warning",
        "reason": EVENT_REASON,
        "message": EVENT_MESSAGE,
        "source": {"component": EVENT_COMPONENT},
        "reportingComponent": EVENT_COMPONENT,
        "reportingInstance": "",
        "firstTimestamp": time,
        "lastTimestamp": time,
        "count": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_form_is_a_recovery_window() {
        for (short, barman) in [
            ("1d", "RECOVERY WINDOW OF 1 DAYS"),
            ("30d", "RECOVERY WINDOW OF 30 DAYS"),
            ("2w", "RECOVERY WINDOW OF 2 WEEKS"),
            ("12m", "RECOVERY WINDOW OF 12 MONTHS"),
            ("100d", "RECOVERY WINDOW OF 100 DAYS"),
        ] {
            assert_eq!(recovery_window_policy(short).as_deref(), Ok(barman));
        }
        for bad in [
            "",
            "d",
            "0d",
            "07d",
            "30",
            "30y",
            "30D",
            "-3d",
            "3 d",
            "x3d",
            "3dd",
            "REDUNDANCY 3",
        ] {
            let error = recovery_window_policy(bad).unwrap_err();
            assert_eq!(error.policy, bad);
            assert!(!error.to_string().contains("REDUNDANCY n"), "{error}");
        }
    }

    #[test]
    fn the_variable_takes_redundancy_too() {
        assert_eq!(
            override_policy("REDUNDANCY 3").as_deref(),
            Ok("REDUNDANCY 3")
        );
        assert_eq!(
            override_policy(" redundancy  12 ").as_deref(),
            Ok("REDUNDANCY 12")
        );
        assert_eq!(
            override_policy("7d").as_deref(),
            Ok("RECOVERY WINDOW OF 7 DAYS")
        );
        for bad in [
            "REDUNDANCY",
            "REDUNDANCY 0",
            "REDUNDANCY -1",
            "REDUNDANCY 3 4",
            "REDUNDANCY x",
        ] {
            let error = override_policy(bad).unwrap_err().to_string();
            assert!(
                error.contains(POLICY_VARIABLE) && error.contains("REDUNDANCY n"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_variable_wins_over_the_store() {
        assert_eq!(
            effective_policy(Some("REDUNDANCY 2"), Some("30d")),
            Ok(Some("REDUNDANCY 2".to_owned()))
        );
        assert_eq!(
            effective_policy(None, Some("30d")),
            Ok(Some("RECOVERY WINDOW OF 30 DAYS".to_owned()))
        );
        assert_eq!(
            effective_policy(Some(" "), Some("2w")),
            Ok(Some("RECOVERY WINDOW OF 2 WEEKS".to_owned()))
        );
        assert_eq!(effective_policy(None, Some("")), Ok(None));
        assert_eq!(effective_policy(None, None), Ok(None));
        assert!(effective_policy(Some("keep all"), Some("30d")).is_err());
        assert!(effective_policy(None, Some("30 days")).is_err());
    }

    fn cluster() -> Cluster {
        serde_json::from_value(json!({
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "pg", "namespace": "default", "uid": "uid-pg"},
            "spec": {"plugins": [{"name": PLUGIN_NAME, "parameters": {"barmanObjectName": "store"}}]},
            "status": {"currentPrimary": "pg-1"}
        }))
        .unwrap()
    }

    fn backup(id: &str) -> Value {
        json!({
            "metadata": {"name": format!("b-{id}")},
            "spec": {"cluster": {"name": "pg"}},
            "status": {
                "phase": "completed",
                "method": "plugin",
                "backupID": id,
                "pluginMetadata": {"clusterUID": "uid-pg", "pluginName": PLUGIN_NAME}
            }
        })
    }

    #[test]
    fn only_completed_plugin_backups_of_this_cluster_gone_from_the_catalog_are_picked() {
        let cluster = cluster();
        let catalog = HashSet::from(["kept"]);
        assert!(is_gone_from_catalog(&backup("gone"), &cluster, &catalog));
        assert!(!is_gone_from_catalog(&backup("kept"), &cluster, &catalog));
        // A completed Backup without an ID is not in any catalog: picked, as the plugin does.
        let mut no_id = backup("x");
        no_id["status"].as_object_mut().unwrap().remove("backupID");
        assert!(is_gone_from_catalog(&no_id, &cluster, &catalog));
        let changes: [(&str, &str, Value); 7] = [
            ("another cluster", "/spec/cluster/name", json!("other")),
            ("running", "/status/phase", json!("running")),
            ("failed", "/status/phase", json!("failed")),
            ("volume snapshot", "/status/method", json!("volumeSnapshot")),
            (
                "in-tree barman",
                "/status/method",
                json!("barmanObjectStore"),
            ),
            (
                "an earlier cluster",
                "/status/pluginMetadata/clusterUID",
                json!("uid-old"),
            ),
            (
                "another plugin",
                "/status/pluginMetadata/pluginName",
                json!("other.io"),
            ),
        ];
        for (why, pointer, value) in changes {
            let mut other = backup("gone");
            *other.pointer_mut(pointer).unwrap() = value;
            assert!(!is_gone_from_catalog(&other, &cluster, &catalog), "{why}");
        }
        let mut no_metadata = backup("gone");
        no_metadata["status"]
            .as_object_mut()
            .unwrap()
            .remove("pluginMetadata");
        assert!(!is_gone_from_catalog(&no_metadata, &cluster, &catalog));
        assert!(!is_gone_from_catalog(&json!({}), &cluster, &catalog));
    }

    fn store(instance_sidecar: Value) -> ObjectStore {
        serde_json::from_value(json!({
            "metadata": {"name": "store"},
            "spec": {
                "configuration": {"destinationPath": "s3://b/p"},
                "instanceSidecarConfiguration": instance_sidecar
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_interval_comes_from_the_store_and_zero_means_retry() {
        let seconds = |value: Value| store_interval(&store(value));
        assert_eq!(
            seconds(json!({"retentionPolicyIntervalSeconds": 1800})),
            Some(Duration::from_secs(1800))
        );
        assert_eq!(seconds(json!({"retentionPolicyIntervalSeconds": 0})), None);
        assert_eq!(seconds(json!({"retentionPolicyIntervalSeconds": -5})), None);
        assert_eq!(seconds(json!({})), None);
        assert_eq!(retry_interval(None), RETRY_INTERVAL);
        assert_eq!(retry_interval(Some("2")), Duration::from_secs(2));
        assert_eq!(retry_interval(Some("0")), RETRY_INTERVAL);
        assert_eq!(retry_interval(Some("soon")), RETRY_INTERVAL);
    }

    #[test]
    fn the_event_is_a_warning_on_the_cluster() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-02T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = warning_event(&cluster(), "postgresql.cnpg.io/v1", now);
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["reason"], "RetentionPolicyFailed");
        assert_eq!(event["message"], "Retention policy failed");
        assert_eq!(event["involvedObject"]["kind"], "Cluster");
        assert_eq!(event["involvedObject"]["uid"], "uid-pg");
        assert_eq!(event["metadata"]["namespace"], "default");
        assert!(
            event["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("pg.")
        );
        assert_eq!(event["firstTimestamp"], "2026-12-02T06:00:00Z");
    }
}
