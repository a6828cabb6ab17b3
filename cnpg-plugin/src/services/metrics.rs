//! `cnpgi.metrics.v1.Metrics`: three gauges about the ObjectStore's recovery window, which
//! CloudNativePG's metrics exporter adds to the instance's `/metrics`.
//!
//! `Collect` reads them on every scrape from `status.serverRecoveryWindow[serverName]` of the
//! store the Cluster archives to (through the client's 10 s cache, as the plugin's cached
//! client), as Unix seconds; a time the status does not have is 0.

use std::sync::Arc;

use chrono::DateTime;
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::cluster::Cluster;
use crate::instance::Instance;
use crate::log::Logger;
use crate::metadata::PLUGIN_NAME;
use crate::objectstore::RecoveryWindow;
use crate::proto::metrics::{
    CollectMetric, CollectMetricsRequest, CollectMetricsResult, DefineMetricsRequest,
    DefineMetricsResult, Metric, MetricType, MetricsCapabilitiesRequest, MetricsCapabilitiesResult,
    MetricsCapability, metric_type, metrics_capability, metrics_server,
};

/// The instance role's Metrics service.
#[derive(Debug)]
pub struct Metrics {
    instance: Arc<Instance>,
}

impl Metrics {
    /// The service, reading through the instance's Kubernetes client.
    pub fn new(instance: Arc<Instance>) -> Self {
        Self { instance }
    }
}

/// The gauges' names after the plugin's prefix, with their help text.
const GAUGES: [(&str, &str); 3] = [
    (
        "first_recoverability_point",
        "The first point of recoverability for the cluster as a unix timestamp",
    ),
    (
        "last_available_backup_timestamp",
        "The last available backup as a unix timestamp",
    ),
    (
        "last_failed_backup_timestamp",
        "The last failed backup as a unix timestamp",
    ),
];

/// The plugin's metric prefix: its name with `.` and `-` made `_`
/// (`barman_cloud_cloudnative_pg_io_`).
pub fn metric_prefix() -> String {
    let mut prefix = PLUGIN_NAME.replace(['.', '-'], "_");
    prefix.push('_');
    prefix
}

#[tonic::async_trait]
impl metrics_server::Metrics for Metrics {
    async fn get_capabilities(
        &self,
        _request: Request<MetricsCapabilitiesRequest>,
    ) -> Result<Response<MetricsCapabilitiesResult>, Status> {
        Ok(Response::new(MetricsCapabilitiesResult {
            capabilities: vec![MetricsCapability {
                r#type: Some(metrics_capability::Type::Rpc(metrics_capability::Rpc {
                    r#type: metrics_capability::rpc::Type::Metrics.into(),
                })),
            }],
        }))
    }

    async fn define(
        &self,
        _request: Request<DefineMetricsRequest>,
    ) -> Result<Response<DefineMetricsResult>, Status> {
        let prefix = metric_prefix();
        let metrics = GAUGES
            .iter()
            .map(|(name, help)| Metric {
                fq_name: format!("{prefix}{name}"),
                help: (*help).to_owned(),
                // CloudNativePG dereferences it unchecked: always set.
                value_type: Some(MetricType {
                    r#type: metric_type::Type::Gauge.into(),
                }),
                ..Metric::default()
            })
            .collect();
        Ok(Response::new(DefineMetricsResult { metrics }))
    }

    async fn collect(
        &self,
        request: Request<CollectMetricsRequest>,
    ) -> Result<Response<CollectMetricsResult>, Status> {
        let log = self.instance.log.named("metrics");
        let cluster =
            Cluster::from_json(&request.get_ref().cluster_definition).map_err(|error| {
                Status::invalid_argument(format!(
                    "read the Cluster definition of the metrics request: {error}"
                ))
            })?;
        let settings = cluster.plugin_settings();
        let store_name = settings.barman_object_name.ok_or_else(|| {
            Status::invalid_argument(format!(
                "find the ObjectStore of Cluster {:?}: its spec.plugins entry {PLUGIN_NAME:?} \
                 has no barmanObjectName parameter; add one naming the ObjectStore",
                cluster.metadata.name
            ))
        })?;
        let store = self
            .instance
            .kubernetes
            .object_store(&store_name)
            .await
            .map_err(|error| {
                log.error(
                    "while getting object store",
                    &[
                        ("objectStore", json!(store_name)),
                        ("error", json!(error.to_string())),
                    ],
                );
                if error.is_forbidden() || error.is_not_found() {
                    Status::failed_precondition(error.to_string())
                } else {
                    Status::unknown(error.to_string())
                }
            })?;
        let window = store
            .status
            .as_ref()
            .and_then(|status| status.server_recovery_window.get(&settings.server_name));
        Ok(Response::new(CollectMetricsResult {
            metrics: values(window, &log),
        }))
    }
}

/// The three gauges in [`GAUGES`]' order: Unix seconds, 0 for a missing or unreadable time.
fn values(window: Option<&RecoveryWindow>, log: &Logger) -> Vec<CollectMetric> {
    let prefix = metric_prefix();
    let times = window.map_or([None, None, None], |w| {
        [
            w.first_recoverability_point.as_deref(),
            w.last_successful_backup_time.as_deref(),
            w.last_failed_backup_time.as_deref(),
        ]
    });
    GAUGES
        .iter()
        .zip(times)
        .map(|((name, _), time)| CollectMetric {
            fq_name: format!("{prefix}{name}"),
            value: time.map_or(0.0, |text| seconds(name, text, log)),
            ..CollectMetric::default()
        })
        .collect()
}

fn seconds(name: &str, text: &str, log: &Logger) -> f64 {
    match DateTime::parse_from_rfc3339(text) {
        // Exact: Unix seconds of any plausible date are far below 2^53.
        #[allow(clippy::cast_precision_loss)]
        Ok(time) => time.timestamp() as f64,
        Err(error) => {
            log.warning(
                "Reporting 0: the ObjectStore status has a time that is not RFC 3339",
                &[
                    ("metric", json!(name)),
                    ("value", json!(text)),
                    ("error", json!(error.to_string())),
                ],
            );
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogOptions;

    #[test]
    fn a_missing_window_or_time_is_zero() {
        let log = Logger::to_writer(LogOptions::default(), Box::new(std::io::sink()));
        let zero = values(None, &log);
        assert_eq!(zero.len(), 3);
        assert!(zero.iter().all(|m| m.value == 0.0));
        assert_eq!(
            zero[0].fq_name,
            "barman_cloud_cloudnative_pg_io_first_recoverability_point"
        );
        let window = RecoveryWindow {
            first_recoverability_point: Some("2026-11-25T03:50:49Z".into()),
            last_successful_backup_time: Some("2026-11-25T04:50:49+01:00".into()),
            last_failed_backup_time: Some("yesterday".into()),
            ..RecoveryWindow::default()
        };
        let got: Vec<f64> = values(Some(&window), &log)
            .iter()
            .map(|m| m.value)
            .collect();
        assert_eq!(got, [1_795_578_649.0, 1_795_578_649.0, 0.0]);
    }
}
