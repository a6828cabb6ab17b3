//! `cnpgi.backup.v1.Backup`: a base backup of this instance, asked for by CloudNativePG's
//! instance manager when a Backup object names the plugin.

use std::sync::Arc;

use serde_json::json;
use tonic::{Request, Response, Status};

use crate::instance::Instance;
use crate::proto::backup::{
    BackupCapabilitiesRequest, BackupCapabilitiesResult, BackupCapability, BackupRequest,
    BackupResult, backup_capability, backup_server,
};

/// The instance role's Backup service.
#[derive(Debug)]
pub struct Backup {
    instance: Arc<Instance>,
}

impl Backup {
    /// The service, sharing the instance role's state.
    pub fn new(instance: Arc<Instance>) -> Self {
        Self { instance }
    }
}

#[tonic::async_trait]
impl backup_server::Backup for Backup {
    async fn get_capabilities(
        &self,
        _request: Request<BackupCapabilitiesRequest>,
    ) -> Result<Response<BackupCapabilitiesResult>, Status> {
        Ok(Response::new(BackupCapabilitiesResult {
            capabilities: vec![BackupCapability {
                r#type: Some(backup_capability::Type::Rpc(backup_capability::Rpc {
                    r#type: backup_capability::rpc::Type::Backup.into(),
                })),
            }],
        }))
    }

    async fn backup(
        &self,
        request: Request<BackupRequest>,
    ) -> Result<Response<BackupResult>, Status> {
        let request = request.into_inner();
        match crate::backup::take(&self.instance, &request).await {
            Ok(result) => Ok(Response::new(result)),
            Err(error) => {
                let status = error.status();
                self.instance.log.named("backup").error(
                    "Backup call failed",
                    &[
                        ("backup", json!(backup_name(&request.backup_definition))),
                        ("error", json!(error.to_string())),
                    ],
                );
                Err(status)
            }
        }
    }
}

/// The Backup object's `metadata.name`, for messages; "?" when the JSON does not say.
fn backup_name(definition: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(definition)
        .ok()
        .and_then(|backup| backup["metadata"]["name"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
