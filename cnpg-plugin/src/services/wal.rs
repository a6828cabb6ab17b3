//! `cnpgi.wal.v1.WAL`: PostgreSQL's archive_command and restore_command, relayed by
//! CloudNativePG's `manager wal-archive` / `wal-restore`. The calls run the flows of
//! [`crate::wal`]; a failure is logged here, once, and becomes the call's status with the
//! flow's code and message.

use std::sync::Arc;

use serde_json::json;
use tonic::{Code, Request, Response, Status};

use crate::instance::Instance;
use crate::log::Level;
use crate::proto::wal::{
    SetFirstRequiredRequest, SetFirstRequiredResult, WalArchiveRequest, WalArchiveResult,
    WalCapabilitiesRequest, WalCapabilitiesResult, WalCapability, WalRestoreRequest,
    WalRestoreResult, WalStatusRequest, WalStatusResult, wal_capability, wal_server,
};
use crate::wal::{self as flows, archive, restore};

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

impl Wal {
    /// Logs a failed call once and turns it into its status. A WAL that is not in the
    /// archive, or the end of the WAL stream, is how recovery normally ends: info, not a
    /// warning. The message holds names and paths only, never a credential (the commands'
    /// environment is not part of any error).
    fn failed(&self, msg: &str, wal: &str, error: &flows::Error) -> Status {
        let code = error.code();
        let level = match code {
            Code::NotFound | Code::OutOfRange => Level::Info,
            _ => Level::Warning,
        };
        self.instance.log.named("wal").log(
            level,
            msg,
            &[
                ("walName", json!(wal)),
                ("code", json!(format!("{code:?}"))),
                ("error", json!(error.to_string())),
            ],
        );
        Status::new(code, error.to_string())
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
        let request = request.into_inner();
        match archive::archive(&self.instance, &request).await {
            Ok(_) => Ok(Response::new(WalArchiveResult {})),
            Err(error) => Err(self.failed(
                "Failed archiving WAL: PostgreSQL will retry",
                &request.source_file_name,
                &error,
            )),
        }
    }

    async fn restore(
        &self,
        request: Request<WalRestoreRequest>,
    ) -> Result<Response<WalRestoreResult>, Status> {
        let request = request.into_inner();
        match restore::restore(&self.instance, &request).await {
            Ok(_) => Ok(Response::new(WalRestoreResult {})),
            Err(error) => Err(self.failed(
                "Failed restoring WAL file",
                &request.source_wal_name,
                &error,
            )),
        }
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
