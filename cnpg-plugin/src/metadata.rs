//! What the sidecar says about itself: the same answers as the Barman Cloud Plugin's
//! instance role, because CloudNativePG and the plugin's operator match on them.

use crate::proto::identity::{
    GetPluginMetadataResponse, PluginCapability, plugin_capability,
    plugin_capability::service::Type as ServiceType,
};

/// The plugin's name: CloudNativePG registers the socket under its file name and looks the
/// plugin up by this name, so the two must be equal, and the Cluster's `.spec.plugins[].name`
/// refers to it.
pub const PLUGIN_NAME: &str = "barman-cloud.cloudnative-pg.io";

/// The plugin release we are a drop-in for. Reported as the plugin's version (the operator
/// records it in the Cluster's status) and, later, in each Backup's plugin metadata.
pub const PLUGIN_VERSION: &str = "0.14.0";

/// The display name the plugin reports (also written into each Backup's plugin metadata).
pub const DISPLAY_NAME: &str = "BarmanCloudInstance";

const PROJECT_URL: &str = "https://github.com/cloudnative-pg/plugin-barman-cloud";

/// `GetPluginMetadata`'s answer, field for field the plugin's; `description`, `vendor` and
/// `manifest` stay empty as there.
pub fn plugin_metadata() -> GetPluginMetadataResponse {
    GetPluginMetadataResponse {
        name: PLUGIN_NAME.to_owned(),
        version: PLUGIN_VERSION.to_owned(),
        display_name: DISPLAY_NAME.to_owned(),
        project_url: PROJECT_URL.to_owned(),
        repository_url: PROJECT_URL.to_owned(),
        license: "APACHE 2.0".to_owned(),
        license_url: format!("{PROJECT_URL}/LICENSE"),
        maturity: "alpha".to_owned(),
        ..GetPluginMetadataResponse::default()
    }
}

/// The services the instance role serves, in the plugin's order. CloudNativePG then calls
/// `GetCapabilities` on each of them during the handshake.
pub const INSTANCE_SERVICES: [ServiceType; 3] = [
    ServiceType::WalService,
    ServiceType::BackupService,
    ServiceType::Metrics,
];

/// The services the restore role (`manager restore`, the recovery Job's sidecar) serves, in
/// the plugin's order.
pub const RESTORE_SERVICES: [ServiceType; 2] = [ServiceType::RestoreJob, ServiceType::WalService];

/// `GetPluginCapabilities`'s list for the given services.
pub fn plugin_capabilities(services: &[ServiceType]) -> Vec<PluginCapability> {
    services
        .iter()
        .map(|&service| PluginCapability {
            r#type: Some(plugin_capability::Type::Service(
                plugin_capability::Service {
                    r#type: service.into(),
                },
            )),
        })
        .collect()
}
