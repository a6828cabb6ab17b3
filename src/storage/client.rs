//! What every provider's HTTP client shares: timeouts, retries, extra CA roots, default
//! headers, and the clients themselves, built on first use.
//!
//! Building a TLS client loads and parses the system's CA certificates: about 3 ms of the
//! 7 ms an `archive_command` call took against a local endpoint, and wasted whenever the
//! endpoint speaks plain HTTP (an emulator, MinIO inside a cluster). So a client is built
//! only when the first request needs it, and a plain-HTTP request gets one without roots.

use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

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
}

impl HttpConnector for LazyConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(PerScheme {
            options: options.clone(),
            ca_bundle: self.ca_bundle.clone(),
            plain: OnceLock::new(),
            tls: OnceLock::new(),
        }))
    }
}

#[derive(Debug)]
struct PerScheme {
    options: ClientOptions,
    ca_bundle: Option<String>,
    plain: OnceLock<Result<HttpClient, String>>,
    tls: OnceLock<Result<HttpClient, String>>,
}

impl PerScheme {
    fn client(&self, plain: bool) -> Result<&HttpClient, HttpError> {
        let cell = if plain { &self.plain } else { &self.tls };
        cell.get_or_init(|| {
            let mut options = self.options.clone();
            if plain {
                options = options.with_no_system_certificates(true);
            } else {
                let certs = bundle(
                    self.ca_bundle.as_deref(),
                    object_store::Certificate::from_pem_bundle,
                );
                for cert in certs {
                    options = options.with_root_certificate(cert);
                }
            }
            ReqwestConnector::default()
                .connect(&options)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| {
            HttpError::new(
                HttpErrorKind::Unknown,
                std::io::Error::other(message.clone()),
            )
        })
    }
}

#[async_trait]
impl HttpService for PerScheme {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let plain = req.uri().scheme_str() == Some("http");
        let client = self.client(plain)?;
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

/// The PEM text of a CA bundle file. One that cannot be read or parsed is reported and
/// skipped (the system's roots still apply), as botocore does with a bad `AWS_CA_BUNDLE`.
fn bundle<T, E: std::fmt::Display>(
    path: Option<&str>,
    parse: impl FnOnce(&[u8]) -> Result<Vec<T>, E>,
) -> Vec<T> {
    let Some(path) = path else {
        return Vec::new();
    };
    let certs = std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|pem| parse(&pem).map_err(|e| e.to_string()));
    certs.unwrap_or_else(|e| {
        tracing::warn!("ignoring CA bundle '{path}': {e}");
        Vec::new()
    })
}

/// A reqwest client builder for `base`: without CA certificates when `base` is plain HTTP,
/// with the bundle's roots added otherwise.
pub(super) fn reqwest_builder(base: &str, ca_bundle: Option<&str>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    if base.starts_with("http://") {
        return builder.tls_certs_only([]);
    }
    builder.tls_certs_merge(bundle(ca_bundle, reqwest::Certificate::from_pem_bundle))
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
