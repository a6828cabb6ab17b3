//! The client side of the sidecar's socket, as CloudNativePG's instance manager dials it:
//! plaintext HTTP/2 over the Unix socket, no TLS. `manager healthcheck unix` uses it, and so
//! does the CNPG stand-in of the tests.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::Error;
use crate::metadata::PLUGIN_NAME;

/// The socket in `plugin_path`: named after the plugin, because CloudNativePG registers each
/// socket of its plugin directory under its file name.
pub fn socket_path(plugin_path: &Path) -> PathBuf {
    plugin_path.join(PLUGIN_NAME)
}

/// A gRPC channel on the Unix socket at `socket`.
///
/// # Errors
/// [`Error::Connect`] when nothing listens there.
pub async fn connect(socket: &Path) -> Result<Channel, Error> {
    let path = socket.to_owned();
    // The URI only fills the HTTP/2 `:authority`; the connector ignores it.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|source| Error::Connect {
            path: socket.to_owned(),
            source,
        })
}
