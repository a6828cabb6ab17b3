//! `cnpgi.wal.v1.WAL`: PostgreSQL's archive_command and restore_command, relayed by
//! CloudNativePG's `manager wal-archive` / `wal-restore`.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::not_implemented;
use crate::instance::Instance;
use crate::proto::wal::{
    SetFirstRequiredRequest, SetFirstRequiredResult, WalArchiveRequest, WalArchiveResult,
    WalCapabilitiesRequest, WalCapabilitiesResult, WalCapability, WalRestoreRequest,
    WalRestoreResult, WalStatusRequest, WalStatusResult, wal_capability, wal_server,
};

/// The instance role's WAL service.
#[derive(Debug)]
pub struct Wal {
    instance: Arc<Instance>,
}

impl Wal {
    /// The service, sharing the instance role's state.
    pub fn new(instance: Arc<Instance>) -> Self {
        Self { instance }
    }
}

/// Archive and Restore, as the plugin: not Status nor SetFirstRequired, so CloudNativePG never
/// calls those two.
pub const CAPABILITIES: [wal_capability::rpc::Type; 2] = [
    wal_capability::rpc::Type::ArchiveWal,
    wal_capability::rpc::Type::RestoreWal,
];

#[tonic::async_trait]
impl wal_server::Wal for Wal {
    async fn get_capabilities(
        &self,
        _request: Request<WalCapabilitiesRequest>,
    ) -> Result<Response<WalCapabilitiesResult>, Status> {
        let capabilities = CAPABILITIES
            .iter()
            .map(|&rpc| WalCapability {
                r#type: Some(wal_capability::Type::Rpc(wal_capability::Rpc {
                    r#type: rpc.into(),
                })),
            })
            .collect();
        Ok(Response::new(WalCapabilitiesResult { capabilities }))
    }

    async fn archive(
        &self,
        request: Request<WalArchiveRequest>,
    ) -> Result<Response<WalArchiveResult>, Status> {
        Err(not_implemented(
            "archive WAL",
            &request.into_inner().source_file_name,
        ))
    }

    async fn restore(
        &self,
        request: Request<WalRestoreRequest>,
    ) -> Result<Response<WalRestoreResult>, Status> {
        Err(not_implemented(
            "restore WAL",
            &request.into_inner().source_wal_name,
        ))
    }

    // Not advertised (the plugin's bodies panic, which its server turns into INTERNAL);
    // UNIMPLEMENTED says the same thing more plainly.
    async fn status(
        &self,
        _request: Request<WalStatusRequest>,
    ) -> Result<Response<WalStatusResult>, Status> {
        Err(Status::unimplemented(
            "call WAL/Status: not a capability of this plugin",
        ))
    }

    async fn set_first_required(
        &self,
        _request: Request<SetFirstRequiredRequest>,
    ) -> Result<Response<SetFirstRequiredResult>, Status> {
        Err(Status::unimplemented(
            "call WAL/SetFirstRequired: not a capability of this plugin",
        ))
    }
}
