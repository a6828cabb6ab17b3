//! `cnpgi.metrics.v1.Metrics`: three gauges about the ObjectStore's recovery window, which
//! CloudNativePG's metrics exporter adds to the instance's `/metrics`.

use tonic::{Request, Response, Status};

use super::not_implemented;
use crate::metadata::PLUGIN_NAME;
use crate::proto::metrics::{
    CollectMetricsRequest, CollectMetricsResult, DefineMetricsRequest, DefineMetricsResult, Metric,
    MetricType, MetricsCapabilitiesRequest, MetricsCapabilitiesResult, MetricsCapability,
    metric_type, metrics_capability, metrics_server,
};

/// The instance role's Metrics service.
#[derive(Debug, Default)]
pub struct Metrics;

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
        _request: Request<CollectMetricsRequest>,
    ) -> Result<Response<CollectMetricsResult>, Status> {
        Err(not_implemented("collect metrics", "ObjectStore status"))
    }
}
