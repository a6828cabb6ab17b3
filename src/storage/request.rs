//! Requests we send ourselves rather than through object_store (GCS's JSON API, S3's
//! chunk-signed uploads): the retries, the logging, and the error they end in.

use std::future::Future;
use std::time::Duration;

use super::client::{RETRY_BUDGET, RequestLog};
use super::credentials::NoCredentials;

/// A failed request: the HTTP status (if any) and a message without credentials.
#[derive(Debug)]
pub(in crate::storage) struct RequestError {
    pub status: Option<u16>,
    pub connect: bool,
    pub message: String,
    /// Where credentials were looked for, when none were found (`credentials.rs`).
    pub no_credentials: Option<String>,
}

impl RequestError {
    /// A failure with no HTTP status behind it.
    pub(in crate::storage) fn other(message: impl Into<String>) -> Self {
        RequestError {
            status: None,
            connect: false,
            message: message.into(),
            no_credentials: None,
        }
    }

    /// `provider`'s credentials could not be had; says where they were looked for when none
    /// were found.
    pub(in crate::storage) fn credentials(provider: &str, e: &object_store::Error) -> Self {
        RequestError {
            no_credentials: NoCredentials::find(e).map(|n| n.looked_in.clone()),
            ..RequestError::other(format!("cannot get {provider} credentials: {e}"))
        }
    }
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {}

pub(in crate::storage) type Result<T> = std::result::Result<T, RequestError>;

pub(in crate::storage) fn transport(e: reqwest::Error) -> RequestError {
    RequestError {
        status: None,
        connect: e.is_connect() || e.is_timeout(),
        message: e.without_url().to_string(),
        no_credentials: None,
    }
}

/// What kind of transport failure `e` was, for the request log (its text may carry the URL).
fn transport_kind(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "transport error"
    }
}

/// Sends the request `attempt` builds (afresh each time: credentials and signatures can
/// change, a streamed body is consumed), retrying transport failures and 429 and 5xx answers
/// but 501 with backoff, within object_store's budget. An error from `attempt` itself ends
/// the retries. A final failure carries the status and what `explain` makes of the answer's
/// body. `object` names the object in the request log when the path does not.
pub(in crate::storage) async fn send<F, Fut>(
    http: &reqwest::Client,
    object: Option<&str>,
    explain: fn(&str) -> String,
    mut attempt: F,
) -> Result<reqwest::Response>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<reqwest::Request>>,
{
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let request = attempt().await?;
        let url = request.url();
        let log = RequestLog::start(request.method().as_str(), url.path(), url.query())
            .map(|log| log.object(object));
        let outcome = http.execute(request).await;
        if let Some(log) = &log {
            match &outcome {
                Ok(r) => log.finish(r.status().as_str(), attempts),
                Err(e) => log.finish(transport_kind(e), attempts),
            }
        }
        let retryable = match &outcome {
            // 501 Not Implemented is the server's final word on what was asked.
            Ok(r) => {
                let status = r.status().as_u16();
                (r.status().is_server_error() && status != 501) || status == 429
            }
            Err(e) => !e.is_builder(),
        };
        // The same budget as object_store's retries: against a silent endpoint, each
        // attempt waits out the read timeout, and five of them made five minutes.
        let out_of_time = started.elapsed() + delay >= RETRY_BUDGET;
        if !retryable || attempts > 4 || out_of_time {
            let response = outcome.map_err(transport)?;
            let status = response.status();
            if status.is_success() || status.as_u16() == 308 {
                return Ok(response);
            }
            let body = response.text().await.unwrap_or_default();
            return Err(RequestError {
                status: Some(status.as_u16()),
                connect: false,
                message: format!("{status}: {}", explain(&body)),
                no_credentials: None,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(8));
    }
}

/// The first line of an error answer's `body`, cut short: what a body that is not the
/// provider's error document can say without quoting the request.
pub(in crate::storage) fn first_line(body: &str) -> String {
    body.lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}

/// Percent-encodes `name` for a URL path: everything but RFC 3986's unreserved set and the
/// bytes in `keep`.
pub(in crate::storage) fn percent_encode(name: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') || keep.contains(&b)
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
