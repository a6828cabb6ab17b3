//! `cnpgi.identity.v1.Identity`: the first calls of every connection. Both roles answer the
//! same metadata and differ only in the services they advertise.

use tonic::{Request, Response, Status};

use crate::metadata::{self, INSTANCE_SERVICES, RESTORE_SERVICES};
use crate::proto::identity::plugin_capability::service::Type as ServiceType;
use crate::proto::identity::{
    GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginMetadataRequest,
    GetPluginMetadataResponse, ProbeRequest, ProbeResponse, identity_server,
};

/// A role's Identity: the services it advertises.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    services: &'static [ServiceType],
}

impl Identity {
    /// The instance role's: WAL, Backup, Metrics.
    pub fn instance() -> Self {
        Self {
            services: &INSTANCE_SERVICES,
        }
    }

    /// The restore role's: RestoreJobHooks, WAL.
    pub fn restore() -> Self {
        Self {
            services: &RESTORE_SERVICES,
        }
    }
}

#[tonic::async_trait]
impl identity_server::Identity for Identity {
    async fn get_plugin_metadata(
        &self,
        _request: Request<GetPluginMetadataRequest>,
    ) -> Result<Response<GetPluginMetadataResponse>, Status> {
        Ok(Response::new(metadata::plugin_metadata()))
    }

    async fn get_plugin_capabilities(
        &self,
        _request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities: metadata::plugin_capabilities(self.services),
        }))
    }

    // Always ready, as the plugin: the sidecar holds no state that must load first.
    async fn probe(
        &self,
        _request: Request<ProbeRequest>,
    ) -> Result<Response<ProbeResponse>, Status> {
        Ok(Response::new(ProbeResponse { ready: true }))
    }
}
