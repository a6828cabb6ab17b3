//! Every GCS request goes through the JSON API instead of object_store's XML API: listing,
//! reads, whole-object writes (plain and create-only), streamed (resumable) uploads and
//! deletes.
//!
//! object_store lists with the XML API's `list-type=2` and streams with XML multipart uploads.
//! Real GCS serves both, but no GCS emulator does (gcp-storage-emulator and fake-gcs-server
//! answer 501), while google-cloud-storage, and so Barman, uses the JSON API for everything.
//! Going the same way lets the whole GCS path be tested on loopback, and costs nothing on
//! real GCS. Authentication reuses object_store's credential provider.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use object_store::ObjectMeta;
use object_store::gcp::GcpCredentialProvider;
use object_store::path::Path;

use crate::storage::request::{self, RequestError, Result, first_line, percent_encode, transport};

/// JSON-API access to one bucket.
#[derive(Debug, Clone)]
pub(in crate::storage) struct GcsJson {
    http: reqwest::Client,
    base: String,
    bucket: String,
    credentials: GcpCredentialProvider,
    kms_key_name: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectList {
    #[serde(default)]
    items: Vec<Object>,
    next_page_token: Option<String>,
}

#[derive(serde::Deserialize)]
struct Object {
    name: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    updated: Option<DateTime<Utc>>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    generation: Option<String>,
}

/// The bytes in each resumable-upload request but the last must be a multiple of 256 KiB.
const GRANULE: usize = 256 * 1024;

impl GcsJson {
    pub(crate) fn new(
        http: reqwest::Client,
        base: &str,
        bucket: &str,
        credentials: GcpCredentialProvider,
        kms_key_name: Option<String>,
    ) -> Self {
        GcsJson {
            http,
            base: base.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            credentials,
            kms_key_name,
        }
    }

    async fn bearer(&self) -> Result<String> {
        self.credentials
            .get_credential()
            .await
            .map(|c| c.bearer.clone())
            .map_err(|e| RequestError::credentials("GCS", &e))
    }

    /// Sends a request with its bearer token, retried as [`request::send`] retries.
    async fn send(
        &self,
        build: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        self.send_for(None, build).await
    }

    /// [`GcsJson::send`] for a request that names `object` only in its body (uploads), so
    /// the request log names it.
    async fn send_for(
        &self,
        object: Option<&Path>,
        build: impl Fn(&reqwest::Client, String) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let build = &build;
        request::send(
            &self.http,
            object.map(Path::as_ref),
            error_message,
            || async move {
                let bearer = self.bearer().await?;
                let mut request = build(&self.http, self.base.clone());
                if !bearer.is_empty() {
                    request = request.bearer_auth(bearer);
                }
                request.build().map_err(transport)
            },
        )
        .await
    }

    /// Lists objects under `prefix` (a directory: a `/` is appended), one level deep with
    /// `delimited`, everything below it otherwise.
    pub(crate) async fn list(&self, prefix: &Path, delimited: bool) -> Result<Vec<ObjectMeta>> {
        let mut prefix = prefix.to_string();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        let mut listing = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let response = self
                .send(|http, base| {
                    let mut query = vec![("prefix", prefix.clone())];
                    if delimited {
                        query.push(("delimiter", "/".into()));
                    }
                    if let Some(token) = &page {
                        query.push(("pageToken", token.clone()));
                    }
                    http.get(format!("{base}/storage/v1/b/{}/o", self.bucket))
                        .query(&query)
                })
                .await?;
            let body: ObjectList = response.json().await.map_err(transport)?;
            for o in body.items {
                listing.push(ObjectMeta {
                    location: Path::from(o.name.as_str()),
                    last_modified: o.updated.unwrap_or_default(),
                    size: o.size.and_then(|s| s.parse().ok()).unwrap_or(0),
                    e_tag: o.etag,
                    version: o.generation,
                });
            }
            match body.next_page_token {
                Some(token) if !token.is_empty() => page = Some(token),
                _ => return Ok(listing),
            }
        }
    }

    fn object_url(&self, base: &str, download: bool, key: &Path) -> String {
        let prefix = if download { "/download" } else { "" };
        format!(
            "{base}{prefix}/storage/v1/b/{}/o/{}",
            self.bucket,
            percent_encode(key.as_ref(), b"")
        )
    }

    /// Starts reading an object.
    pub(crate) async fn get(&self, key: &Path) -> Result<reqwest::Response> {
        self.send(|http, base| {
            http.get(self.object_url(&base, true, key))
                .query(&[("alt", "media")])
        })
        .await
    }

    /// Stores a whole object in one request (`uploadType=multipart`: metadata, then data);
    /// with `if_absent`, only if no object has the name (a 412 otherwise).
    pub(crate) async fn put(
        &self,
        key: &Path,
        data: Bytes,
        metadata: &[(String, String)],
        if_absent: bool,
    ) -> Result<()> {
        const BOUNDARY: &str = "barman-cloud-rs-7d3f1c0b9e2a";
        let head = format!(
            "--{BOUNDARY}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n\
             --{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n\r\n",
            object_resource(key, metadata)
        );
        let tail = format!("\r\n--{BOUNDARY}--\r\n");
        let mut body = BytesMut::with_capacity(head.len() + data.len() + tail.len());
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(&data);
        body.extend_from_slice(tail.as_bytes());
        let body = body.freeze();
        self.send_for(Some(key), |http, base| {
            let mut query = self.upload_query("multipart");
            if if_absent {
                query.push(("ifGenerationMatch", "0".into()));
            }
            http.post(format!("{base}/upload/storage/v1/b/{}/o", self.bucket))
                .query(&query)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    format!("multipart/related; boundary={BOUNDARY}"),
                )
                .body(body.clone())
        })
        .await
        .map(drop)
    }

    /// Deletes one object.
    pub(crate) async fn delete(&self, key: &Path) -> Result<()> {
        self.send(|http, base| http.delete(self.object_url(&base, false, key)))
            .await
            .map(drop)
    }

    fn upload_query(&self, kind: &str) -> Vec<(&'static str, String)> {
        let mut query = vec![("uploadType", kind.to_string())];
        if let Some(kms) = &self.kms_key_name {
            query.push(("kmsKeyName", kms.clone()));
        }
        query
    }

    /// Opens a resumable upload session for `key` with custom `metadata`.
    pub(crate) async fn start_upload(
        self: &Arc<Self>,
        key: &Path,
        metadata: &[(String, String)],
    ) -> Result<ResumableUpload> {
        let body = object_resource(key, metadata);
        let response = self
            .send_for(Some(key), |http, base| {
                http.post(format!("{base}/upload/storage/v1/b/{}/o", self.bucket))
                    .query(&self.upload_query("resumable"))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        let session = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                RequestError::other("the resumable upload answer has no Location header")
            })?
            .to_string();
        Ok(ResumableUpload {
            gcs: self.clone(),
            key: key.clone(),
            session,
            buffer: BytesMut::new(),
            sent: 0,
        })
    }
}

/// What a JSON-API error body says, without the rest of the body (which can quote the
/// request): `error.message` when it is one, else the first line, cut short.
fn error_message(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Detail,
    }
    #[derive(serde::Deserialize)]
    struct Detail {
        message: String,
    }
    match serde_json::from_str::<Body>(body) {
        Ok(b) => b.error.message,
        Err(_) => first_line(body),
    }
}

/// The JSON object resource of an upload: its name and custom metadata (Barman's tags).
fn object_resource(key: &Path, metadata: &[(String, String)]) -> String {
    let metadata: serde_json::Map<String, serde_json::Value> = metadata
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({ "name": key.as_ref(), "metadata": metadata }).to_string()
}

/// One resumable upload: data is sent in 256 KiB multiples as it arrives; the object exists
/// only once the final request (which states the total size) succeeds.
pub(in crate::storage) struct ResumableUpload {
    gcs: Arc<GcsJson>,
    /// The object being written, for the request log.
    key: Path,
    session: String,
    buffer: BytesMut,
    sent: u64,
}

impl ResumableUpload {
    pub(crate) async fn write(&mut self, data: &[u8], chunk_size: usize) -> Result<()> {
        self.buffer.extend_from_slice(data);
        let chunk = chunk_size.max(GRANULE) / GRANULE * GRANULE;
        while self.buffer.len() >= chunk {
            let part = self.buffer.split_to(chunk).freeze();
            self.put(part, false).await?;
        }
        Ok(())
    }

    pub(crate) async fn finish(mut self) -> Result<()> {
        let last = std::mem::take(&mut self.buffer).freeze();
        self.put(last, true).await
    }

    async fn put(&mut self, part: Bytes, last: bool) -> Result<()> {
        let start = self.sent;
        let end = start + part.len() as u64;
        let range = match (part.is_empty(), last) {
            (true, true) => format!("bytes */{end}"),
            (_, true) => format!("bytes {start}-{}/{end}", end - 1),
            (_, false) => format!("bytes {start}-{}/*", end - 1),
        };
        let session = self.session.clone();
        let response = self
            .gcs
            .send_for(Some(&self.key), |http, _| {
                http.put(session.clone())
                    .header(reqwest::header::CONTENT_RANGE, range.clone())
                    .body(part.clone())
            })
            .await?;
        if last && response.status().as_u16() == 308 {
            return Err(RequestError {
                status: Some(308),
                ..RequestError::other("GCS did not complete the upload")
            });
        }
        self.sent = end;
        Ok(())
    }

    /// Cancels the session so no object is created.
    pub(crate) async fn abort(self) {
        let session = self.session.clone();
        let key = Some(&self.key);
        let _ = self
            .gcs
            .send_for(key, |http, _| http.delete(session.clone()))
            .await;
    }
}
