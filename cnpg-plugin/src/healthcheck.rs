//! `manager healthcheck unix`: the sidecar's startup probe. It asks
//! `grpc.health.v1.Health/Check` (empty service name) on the socket and turns the answer
//! into the plugin's exit codes, so a probe configured for the plugin reads ours the same.

use std::path::Path;

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus as WireStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::Error;
use crate::client::connect;

/// The status the server at `socket` reports, as the wire enum (SERVICE_UNKNOWN included).
///
/// # Errors
/// [`Error::Connect`] when nothing listens, [`Error::HealthCheck`] when the call fails.
pub async fn check(socket: &Path) -> Result<WireStatus, Error> {
    let mut client = HealthClient::new(connect(socket).await?);
    let response = client
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| Error::HealthCheck {
            path: socket.to_owned(),
            status: Box::new(status),
        })?;
    Ok(WireStatus::try_from(response.into_inner().status).unwrap_or(WireStatus::Unknown))
}

/// The plugin's exit code for a status: 0 SERVING, 2 UNKNOWN, 3 NOT_SERVING, 125 anything
/// else (a failed call exits 1, as any failed command).
pub fn exit_code(status: WireStatus) -> u8 {
    match status {
        WireStatus::Serving => 0,
        WireStatus::Unknown => 2,
        WireStatus::NotServing => 3,
        WireStatus::ServiceUnknown => 125,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_plugins() {
        assert_eq!(exit_code(WireStatus::Serving), 0);
        assert_eq!(exit_code(WireStatus::Unknown), 2);
        assert_eq!(exit_code(WireStatus::NotServing), 3);
        assert_eq!(exit_code(WireStatus::ServiceUnknown), 125);
    }
}
