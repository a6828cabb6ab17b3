//! What every provider's HTTP client shares: timeouts, retries, extra CA roots, default
//! headers, and the clients themselves, built on first use.
//!
//! Building a TLS client loads and parses CA certificates: about 3 ms of the 7 ms an
//! `archive_command` call took against a local endpoint, and wasted whenever the endpoint
//! speaks plain HTTP (an emulator, MinIO inside a cluster). So a client is built only when the
//! first request needs it, a plain-HTTP request gets one without roots, and a TLS request
//! first trusts the system's CA bundle file alone (see [`Roots::bundle_file`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::StorageOptions;
use crate::error::{Error, Result};

/// How long a request may keep being retried, on every provider: botocore's legacy mode gives
/// up within about a minute, and so do we.
pub(super) const RETRY_BUDGET: Duration = Duration::from_secs(60);

pub(super) fn retry() -> RetryConfig {
    // Close to botocore's legacy mode (5 attempts): transient faults recover, a dead endpoint
    // fails within seconds instead of object_store's default three minutes.
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: RETRY_BUDGET,
    }
}

pub(super) fn client_options(options: &StorageOptions) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(true)
        .with_connect_timeout(Duration::from_secs(10))
        // A whole-request limit would cut off large uploads on slow links; the read timeout
        // (botocore's meaning of --read-timeout) catches a stalled server instead.
        .with_timeout_disabled()
        .with_read_timeout(read_timeout(options))
}

/// `--read-timeout`, or botocore's default.
pub(super) fn read_timeout(options: &StorageOptions) -> Duration {
    options.read_timeout.unwrap_or(Duration::from_secs(60))
}

/// `AWS_CA_BUNDLE` or `REQUESTS_CA_BUNDLE`: extra roots for TLS, as Barman's SDKs read them.
pub(super) fn ca_bundle(options: &StorageOptions) -> Option<String> {
    options
        .var("AWS_CA_BUNDLE")
        .or_else(|| options.var("REQUESTS_CA_BUNDLE"))
}

pub(super) fn connector(options: &StorageOptions) -> LazyConnector {
    LazyConnector {
        ca_bundle: ca_bundle(options),
        plain: None,
    }
}

/// `client` sending `name: value` with every request.
pub(super) fn with_header(
    client: ClientOptions,
    name: &'static str,
    value: &str,
) -> Result<ClientOptions> {
    let value = object_store::HeaderValue::from_str(value).map_err(|_| {
        Error::Input(format!(
            "invalid value for header {name}: use printable ASCII"
        ))
    })?;
    let mut headers = object_store::HeaderMap::new();
    headers.insert(name, value);
    Ok(client.with_default_headers(headers))
}

/// Hands object_store a client that picks its TLS set-up by the scheme of each request.
#[derive(Debug, Default)]
pub(super) struct LazyConnector {
    /// `AWS_CA_BUNDLE`/`REQUESTS_CA_BUNDLE`: extra roots, read only for a TLS client.
    pub ca_bundle: Option<String>,
    /// The plain-HTTP client, when requests of our own share its connections (S3's
    /// chunk-signed uploads): built on first use otherwise.
    pub plain: Option<reqwest::Client>,
}

impl HttpConnector for LazyConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(PerScheme {
            options: options.clone(),
            ca_bundle: self.ca_bundle.clone(),
            plain: self.plain.clone(),
            clients: Default::default(),
            every_root: AtomicBool::new(false),
        }))
    }
}

/// Which roots a client trusts.
#[derive(Debug, Clone, Copy)]
enum Trust {
    /// None: a plain-HTTP endpoint.
    Plain = 0,
    /// The system's bundle file and the extra bundle ([`Roots::bundle_file`]).
    BundleFile = 1,
    /// Everything the platform verifier loads (the bundle file and every certificate
    /// directory, or `SSL_CERT_DIR`), and the extra bundle.
    Every = 2,
}

#[derive(Debug)]
struct PerScheme {
    options: ClientOptions,
    ca_bundle: Option<String>,
    plain: Option<reqwest::Client>,
    /// Indexed by [`Trust`]; `None` for `BundleFile` when there is no bundle file to read.
    clients: [OnceLock<Result<Option<HttpClient>, String>>; 3],
    /// Set once the bundle file's roots could not verify a server (or there is no such
    /// file): from then on every TLS request goes through [`Trust::Every`].
    every_root: AtomicBool,
}

impl PerScheme {
    fn client(&self, trust: Trust) -> Result<Option<&HttpClient>, HttpError> {
        self.clients[trust as usize]
            .get_or_init(|| {
                if let (Trust::Plain, Some(http)) = (trust, &self.plain) {
                    return Ok(Some(HttpClient::new(http.clone())));
                }
                let mut options = self.options.clone();
                let roots = match trust {
                    Trust::Plain => Roots::default(),
                    Trust::BundleFile => match Roots::bundle_file(self.ca_bundle.as_deref()) {
                        Some(roots) => roots,
                        None => return Ok(None),
                    },
                    Trust::Every => Roots::extra(self.ca_bundle.as_deref()),
                };
                options = options.with_no_system_certificates(!matches!(trust, Trust::Every));
                for der in &roots.0 {
                    let cert =
                        object_store::Certificate::from_der(der).map_err(|e| e.to_string())?;
                    options = options.with_root_certificate(cert);
                }
                ReqwestConnector::default()
                    .connect(&options)
                    .map(Some)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map(Option::as_ref)
            .map_err(|message| {
                HttpError::new(
                    HttpErrorKind::Unknown,
                    std::io::Error::other(message.clone()),
                )
            })
    }

    async fn send(&self, client: &HttpClient, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        // object_store retries inside, each attempt through here: one line per attempt.
        let log = RequestLog::start(req.method().as_str(), req.uri().path(), req.uri().query());
        let outcome = client.execute(req).await;
        if let Some(log) = &log {
            match &outcome {
                Ok(response) => log.finish(response.status().as_str(), 1),
                Err(e) => log.finish(&format!("{:?}", e.kind()), 1),
            }
        }
        outcome
    }
}

#[async_trait]
impl HttpService for PerScheme {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        if req.uri().scheme_str() == Some("http") {
            let client = self.client(Trust::Plain)?.expect("a plain-HTTP client");
            return self.send(client, req).await;
        }
        let mut req = req;
        if !self.every_root.load(Ordering::Relaxed) {
            if let Some(client) = self.client(Trust::BundleFile)? {
                let again = copy(&req);
                match self.send(client, req).await {
                    Err(e) if certificate_refused(&e) => {
                        // Refused before anything was sent: the same request again, with the
                        // roots OpenSSL would also find under the certificate directory.
                        tracing::debug!(
                            "the server's certificate is not signed by a root of the CA bundle \
                             file: trying every system root"
                        );
                        req = again;
                    }
                    outcome => return outcome,
                }
            }
            self.every_root.store(true, Ordering::Relaxed);
        }
        let client = self.client(Trust::Every)?.expect("a TLS client");
        self.send(client, req).await
    }
}

/// The same request: what object_store's reqwest client sends of one (method, URI, headers,
/// body; the body's bytes are shared, not copied).
fn copy(req: &HttpRequest) -> HttpRequest {
    let mut again = HttpRequest::new(req.body().clone());
    *again.method_mut() = req.method().clone();
    *again.uri_mut() = req.uri().clone();
    *again.headers_mut() = req.headers().clone();
    again
}

/// Whether TLS refused the server's certificate, somewhere in the chain. rustls's error sits
/// inside `io::Error`s (two of them, from hyper's connector), whose `source` skips what they
/// wrap, so each is opened with `get_ref`.
fn certificate_refused(e: &HttpError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        let mut inner = err;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = wrapped;
        }
        if matches!(
            inner.downcast_ref::<rustls::Error>(),
            Some(rustls::Error::InvalidCertificate(_))
        ) {
            return true;
        }
        source = err.source();
    }
    false
}

/// The query parameters a request line keeps: what names the objects. Everything else (a SAS
/// signature, an upload session) stays out of the log.
const NAMING_PARAMETERS: [&str; 3] = ["prefix", "name", "partNumber"];

/// `GET /bucket/key?prefix=…` for the debug log: the method, the path (the bucket or container
/// and the object key) and only the query parameters in [`NAMING_PARAMETERS`].
fn request_line(method: &str, path: &str, query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            NAMING_PARAMETERS.contains(&name)
        })
        .collect();
    match kept.as_slice() {
        [] => format!("{method} {path}"),
        kept => format!("{method} {path}?{}", kept.join("&")),
    }
}

/// One debug line per storage request: what was asked, what came back, how long it took, and
/// which attempt it was when that is known (object_store counts its retries out of sight).
pub(super) struct RequestLog {
    line: String,
    started: std::time::Instant,
}

impl RequestLog {
    /// A request about to be sent; `None` unless DEBUG lines are shown, so that
    /// archive_command's requests build no log text by default.
    pub(super) fn start(method: &str, path: &str, query: Option<&str>) -> Option<RequestLog> {
        tracing::enabled!(tracing::Level::DEBUG).then(|| RequestLog {
            line: request_line(method, path, query),
            started: std::time::Instant::now(),
        })
    }

    /// Names the object when the path does not (GCS uploads carry it in the body).
    pub(super) fn object(mut self, object: Option<&str>) -> RequestLog {
        if let Some(object) = object {
            self.line = format!("{} for '{object}'", self.line);
        }
        self
    }

    /// Logs the line with the request's `outcome`.
    pub(super) fn finish(&self, outcome: &str, attempt: u32) {
        let (line, ms) = (&self.line, self.started.elapsed().as_secs_f64() * 1000.0);
        if attempt > 1 {
            tracing::debug!("request {line}: {outcome} in {ms:.1} ms (attempt {attempt})");
        } else {
            tracing::debug!("request {line}: {outcome} in {ms:.1} ms");
        }
    }
}

/// CA roots, as DER.
#[derive(Default)]
struct Roots(Vec<CertificateDer<'static>>);

impl Roots {
    /// The roots of the system's CA bundle file (`SSL_CERT_FILE`, or the file OpenSSL's
    /// probe finds, Debian's `/etc/ssl/certs/ca-certificates.crt`) and `ca_bundle`; `None`
    /// when only `SSL_CERT_DIR` is set or there is no such file.
    ///
    /// Tried first because the platform verifier, left to itself, reads that file and then
    /// every file under `/etc/ssl/certs` (on Debian the same certificates again, 292
    /// entries): 2.7 ms of every process that talks HTTPS here, where OpenSSL opens that
    /// directory only to look up an issuer the file lacks. A server these roots refuse is
    /// tried again with every root the platform verifier loads ([`Trust::Every`]), so the
    /// same servers are trusted as before.
    fn bundle_file(ca_bundle: Option<&str>) -> Option<Roots> {
        let var = |name| std::env::var_os(name).filter(|value| !value.is_empty());
        let file = match var("SSL_CERT_FILE") {
            Some(file) => Some(PathBuf::from(file)),
            None if var("SSL_CERT_DIR").is_some() => None,
            None => openssl_probe::probe().cert_file,
        }?;
        let mut roots = pem_file(&file).ok().filter(|certs| !certs.is_empty())?;
        // Images often point AWS_CA_BUNDLE at the system bundle itself: read it once.
        let same = |extra: &&str| same_file(Path::new(extra), &file);
        roots.extend(Roots::extra(ca_bundle.filter(|extra| !same(extra))).0);
        Some(Roots(roots))
    }

    /// `ca_bundle`'s roots (`AWS_CA_BUNDLE`). One that cannot be read is reported and skipped
    /// (the system's roots still apply), as botocore does with a bad `AWS_CA_BUNDLE`.
    fn extra(ca_bundle: Option<&str>) -> Roots {
        let Some(path) = ca_bundle else {
            return Roots::default();
        };
        Roots(pem_file(Path::new(path)).unwrap_or_else(|e| {
            tracing::warn!("ignoring CA bundle '{path}': {e}");
            Vec::new()
        }))
    }
}

/// Whether `a` and `b` name one file, links resolved.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The certificates of a PEM file that can serve as trust anchors; the rest are skipped, as
/// the platform verifier skips them, since one unparsable root must not break every request.
fn pem_file(path: &Path) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut certs = Vec::new();
    for der in CertificateDer::pem_slice_iter(&pem) {
        let der = der.map_err(|e| e.to_string())?;
        if rustls::RootCertStore::empty().add(der.clone()).is_ok() {
            certs.push(der);
        }
    }
    Ok(certs)
}

/// A reqwest client builder for `base`: without CA certificates when `base` is plain HTTP,
/// with the system's roots and `ca_bundle`'s otherwise.
fn reqwest_builder(base: &str, ca_bundle: Option<&str>) -> reqwest::Result<reqwest::ClientBuilder> {
    let builder = reqwest::Client::builder();
    if base.starts_with("http://") {
        return Ok(builder.tls_certs_only([]));
    }
    let certs = Roots::extra(ca_bundle)
        .0
        .iter()
        .map(|der| reqwest::Certificate::from_der(der))
        .collect::<reqwest::Result<Vec<_>>>()?;
    Ok(builder.tls_certs_merge(certs))
}

/// A reqwest client of our own requests to `base` (GCS's JSON API, S3's chunk-signed uploads),
/// with the timeouts object_store's clients have.
pub(super) fn reqwest_client(
    base: &str,
    ca_bundle: Option<&str>,
    read_timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest_builder(base, ca_bundle)?
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(read_timeout)
        .build()
}

/// Lends object_store an existing reqwest client, so a store that also talks to the
/// provider directly (GCS's JSON API) keeps one connection pool and one TLS set-up.
#[derive(Debug)]
pub(super) struct SharedClient(pub reqwest::Client);

impl HttpConnector for SharedClient {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}
