//! TLS to PostgreSQL as libpq does it: `sslmode`, `sslrootcert`, `sslcert` and `sslkey`
//! (from the conninfo, else `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`, else the
//! files in `~/.postgresql/`), over rustls (already in the tree for the object stores).
//!
//! tokio-postgres asks for a `MakeTlsConnect`; ours is small enough to keep here rather than
//! add a crate, and the part a crate would not give, libpq's three levels of verification,
//! has to be ours anyway.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use crate::error::{Error, Result};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// libpq tries without TLS first; we try TLS first, as `prefer`.
    Allow,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS or fail; verified as `verify-ca` when a root certificate file exists.
    Require,
    /// TLS, the server's chain checked against `sslrootcert`.
    VerifyCa,
    /// As `verify-ca`, and the certificate issued for the host name connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(Error::Input(format!(
                    "invalid sslmode value: \"{value}\": use disable, allow, prefer, require, \
                     verify-ca or verify-full"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: whether TLS is tried, and whether it is a must.
    pub(super) fn for_client(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Client;
        match self {
            SslMode::Disable => Client::Disable,
            SslMode::Allow | SslMode::Prefer => Client::Prefer,
            _ => Client::Require,
        }
    }
}

/// The `ssl*` settings of a conninfo, each `None` when not given there.
#[derive(Debug, Clone, Default)]
pub(super) struct SslParams {
    pub mode: Option<String>,
    pub rootcert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
}

impl SslParams {
    /// Takes the key if it is one of ours; `false` leaves it to tokio-postgres.
    pub(super) fn take(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "sslmode" => &mut self.mode,
            "sslrootcert" => &mut self.rootcert,
            "sslcert" => &mut self.cert,
            "sslkey" => &mut self.key,
            _ => return false,
        };
        *slot = Some(value.to_string());
        true
    }
}

/// What a connection does about TLS, resolved as libpq resolves it.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The mode in force.
    pub mode: SslMode,
    /// The root certificate file, when verification uses one.
    rootcert: Option<PathBuf>,
    config: Option<Arc<ClientConfig>>,
}

impl Tls {
    /// No TLS at all.
    pub fn disabled() -> Tls {
        Tls {
            mode: SslMode::Disable,
            rootcert: None,
            config: None,
        }
    }

    /// The settings from the conninfo, else the environment, else libpq's defaults
    /// (`prefer`; `~/.postgresql/root.crt`, `postgresql.crt` and `postgresql.key`).
    pub(super) fn resolve(params: &SslParams, env: &dyn super::Env) -> Result<Tls> {
        let pick = |given: &Option<String>, var: &str| given.clone().or_else(|| env.var(var));
        let mode = match pick(&params.mode, "PGSSLMODE") {
            Some(mode) => SslMode::parse(&mode)?,
            None => SslMode::Prefer,
        };
        if mode == SslMode::Disable {
            return Ok(Tls::disabled());
        }
        let home = env.var("HOME").map(|h| Path::new(&h).join(".postgresql"));
        let default = |name: &str| home.as_ref().map(|h| h.join(name));
        let rootcert = pick(&params.rootcert, "PGSSLROOTCERT")
            .map(PathBuf::from)
            .or_else(|| default("root.crt"));
        let verify = match mode {
            SslMode::VerifyCa | SslMode::VerifyFull => true,
            // libpq: require with a root certificate present checks the chain.
            SslMode::Require => rootcert.as_ref().is_some_and(|p| p.exists()),
            _ => false,
        };
        if rootcert
            .as_deref()
            .is_some_and(|p| p == Path::new("system"))
        {
            return Err(Error::Input(
                "sslrootcert=system is not supported: give the CA file's path".into(),
            ));
        }
        let rootcert = rootcert.filter(|_| verify);
        let chain = match &rootcert {
            None if verify => {
                return Err(Error::Input(format!(
                    "no root certificate file for sslmode={}: set sslrootcert (or \
                     PGSSLROOTCERT, or create ~/.postgresql/root.crt), or use sslmode=require \
                     to encrypt without verifying the server",
                    mode.name()
                )));
            }
            None => None,
            Some(path) => Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots(path, mode)?),
                    Arc::new(provider()),
                )
                .build()
                .map_err(|e| {
                    Error::Input(format!(
                        "cannot use sslrootcert \"{}\": {e}",
                        path.display()
                    ))
                })?,
            ),
        };
        let verifier = Arc::new(Verifier {
            provider: provider(),
            chain,
            check_name: mode == SslMode::VerifyFull,
        });
        let builder = ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Input(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let cert = pick(&params.cert, "PGSSLCERT").map(PathBuf::from);
        let given_cert = cert.is_some();
        let cert = cert
            .or_else(|| default("postgresql.crt"))
            .filter(|p| given_cert || p.exists());
        let config = match cert {
            // libpq reads a client certificate only when the file is there.
            Some(cert) if cert.exists() => {
                let key = pick(&params.key, "PGSSLKEY")
                    .map(PathBuf::from)
                    .or_else(|| default("postgresql.key"))
                    .unwrap_or_default();
                let (chain, key) = client_identity(&cert, &key)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::Input(format!(
                        "cannot use client certificate \"{}\": {e}",
                        cert.display()
                    ))
                })?
            }
            Some(cert) => {
                return Err(Error::Input(format!(
                    "certificate file \"{}\" does not exist: fix sslcert (or PGSSLCERT)",
                    cert.display()
                )));
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Tls {
            mode,
            rootcert,
            config: Some(Arc::new(config)),
        })
    }
}

fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

fn roots(path: &Path, mode: SslMode) -> Result<RootCertStore> {
    if !path.exists() {
        return Err(Error::Input(format!(
            "root certificate file \"{}\" does not exist: provide the file (sslrootcert, \
             PGSSLROOTCERT), or use sslmode=require instead of {} to skip verification",
            path.display(),
            mode.name()
        )));
    }
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::Input(format!(
            "cannot read root certificate file \"{}\": {e}",
            path.display()
        ))
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
        store
            .add(cert.map_err(|e| unreadable(&e))?)
            .map_err(|e| unreadable(&e))?;
    }
    if store.is_empty() {
        return Err(unreadable(&"no certificate in it"));
    }
    Ok(store)
}

fn client_identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::Input(format!(
                "cannot read certificate file \"{}\": {e}",
                cert.display()
            ))
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::Input(format!(
            "cannot read private key file \"{}\" for sslcert \"{}\": {e}: set sslkey (or \
             PGSSLKEY)",
            key.display(),
            cert.display()
        ))
    })?;
    Ok((chain, key))
}

/// What libpq checks of the server's certificate. Without `chain` (`require` without a root
/// certificate) nothing: encrypted, the server not verified. With it, `verify-ca` (the
/// chain) or `verify-full` (the chain and the host name): webpki checks the chain before
/// the name, so a name mismatch means the chain was good. The handshake signatures are
/// checked either way, so the session key is the peer's.
#[derive(Debug)]
struct Verifier {
    provider: rustls::crypto::CryptoProvider,
    chain: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    check_name: bool,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let Some(webpki) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The handshake with one host.
pub struct Connect {
    config: Option<Arc<ClientConfig>>,
    host: String,
    mode: SslMode,
    rootcert: Option<PathBuf>,
}

impl MakeTlsConnect<tokio_postgres::Socket> for Tls {
    type Stream = Stream;
    type TlsConnect = Connect;
    type Error = std::io::Error;

    fn make_tls_connect(&mut self, host: &str) -> std::io::Result<Connect> {
        Ok(Connect {
            config: self.config.clone(),
            host: host.to_string(),
            mode: self.mode,
            rootcert: self.rootcert.clone(),
        })
    }
}

impl TlsConnect<tokio_postgres::Socket> for Connect {
    type Stream = Stream;
    type Error = std::io::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Stream>> + Send>>;

    fn connect(self, socket: tokio_postgres::Socket) -> Self::Future {
        Box::pin(async move {
            let config = self
                .config
                .clone()
                .ok_or_else(|| std::io::Error::other("TLS is disabled (sslmode=disable)"))?;
            let name = ServerName::try_from(self.host.clone())
                .map_err(|e| std::io::Error::other(format!("host \"{}\": {e}", self.host)))?;
            tokio_rustls::TlsConnector::from(config)
                .connect(name, socket)
                .await
                .map(|s| Stream(Box::new(s)))
                .map_err(|e| std::io::Error::other(self.explain(e)))
        })
    }
}

impl Connect {
    /// One line naming the host, the CA file and the fix for the failures a DBA meets.
    fn explain(&self, e: std::io::Error) -> String {
        let host = &self.host;
        let ca = self
            .rootcert
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mode = self.mode.name();
        let cause = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match cause {
            Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => format!(
                "the certificate of server \"{host}\" is not signed by the CA in \"{ca}\" \
                 (sslmode={mode}): set sslrootcert to the CA that signed it"
            ),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => format!(
                "the certificate of server \"{host}\" is not issued for host name \"{host}\" \
                 (sslmode={mode}): connect with a name in the certificate, or use \
                 sslmode=verify-ca to check the CA only"
            ),
            Some(rustls::Error::InvalidCertificate(c)) => format!(
                "the certificate of server \"{host}\" is not valid ({c:?}, sslmode={mode}, \
                 sslrootcert \"{ca}\")"
            ),
            _ => format!("TLS with server \"{host}\" failed: {e}"),
        }
    }
}

/// A TLS session with the server.
pub struct Stream(Box<tokio_rustls::client::TlsStream<tokio_postgres::Socket>>);

impl TlsStream for Stream {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM works without it; tls-server-end-point needs the certificate's hash
        // algorithm, which is not worth parsing X.509 for.
        ChannelBinding::none()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}
