//! `cnpgi.wal.v1.RestoreJobHooks`: the recovery Job's one call, `Restore`, which runs the
//! flow of [`crate::recovery`] and answers the plugin's `restore_config`. A failure is
//! logged here, once, and becomes the call's status with the flow's code and message.

use std::sync::Arc;

use serde_json::json;
use tonic::{Request, Response, Status};

use crate::instance::Instance;
use crate::proto::wal::{
    RestoreJobHooksCapabilitiesRequest, RestoreJobHooksCapabilitiesResult,
    RestoreJobHooksCapability, RestoreRequest, RestoreResponse, restore_job_hooks_capability,
    restore_job_hooks_server,
};
use crate::recovery::{self, RESTORE_CONFIG};

/// The restore role's RestoreJobHooks service.
#[derive(Debug)]
pub struct RestoreJob {
    instance: Arc<Instance>,
}

impl RestoreJob {
    /// The service, sharing the role's state.
    pub fn new(instance: Arc<Instance>) -> Self {
        Self { instance }
    }
}

#[tonic::async_trait]
impl restore_job_hooks_server::RestoreJobHooks for RestoreJob {
    async fn get_capabilities(
        &self,
        _request: Request<RestoreJobHooksCapabilitiesRequest>,
    ) -> Result<Response<RestoreJobHooksCapabilitiesResult>, Status> {
        Ok(Response::new(RestoreJobHooksCapabilitiesResult {
            capabilities: vec![RestoreJobHooksCapability {
                kind: restore_job_hooks_capability::Kind::Restore.into(),
            }],
        }))
    }

    async fn restore(
        &self,
        request: Request<RestoreRequest>,
    ) -> Result<Response<RestoreResponse>, Status> {
        match recovery::restore(&self.instance, request.get_ref()).await {
            Ok(_) => Ok(Response::new(RestoreResponse {
                restore_config: RESTORE_CONFIG.to_owned(),
                envs: Vec::new(),
            })),
            Err(error) => {
                let code = error.code();
                // Names and paths only: the commands' environment is in no error.
                self.instance.log.named("restore").error(
                    "Can't restore backup",
                    &[
                        ("code", json!(format!("{code:?}"))),
                        ("error", json!(error.to_string())),
                    ],
                );
                Err(Status::new(code, error.to_string()))
            }
        }
    }
}
