//! `cnpgi.identity.v1.Identity`: the first calls of every connection.

use tonic::{Request, Response, Status};

use crate::metadata::{self, INSTANCE_SERVICES};
use crate::proto::identity::{
    GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginMetadataRequest,
    GetPluginMetadataResponse, ProbeRequest, ProbeResponse, identity_server,
};

/// The instance role's Identity.
#[derive(Debug, Default)]
pub struct Identity;

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
            capabilities: metadata::plugin_capabilities(&INSTANCE_SERVICES),
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
