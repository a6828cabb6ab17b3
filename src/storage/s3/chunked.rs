//! Whole-object S3 uploads over plain HTTP with the payload signed chunk by chunk (SigV4's
//! `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, S3's documented way to sign a payload in pieces).
//!
//! Over plain HTTP the payload is part of the signature, as botocore signs it there.
//! object_store signs it whole: the SHA-256 of a 16 MiB segment (10 ms here) is computed, and
//! the file read whole, before the first byte goes out, and s3s-fs then spends as long again
//! checking it. Chunk by chunk, each chunk is read and hashed on a blocking thread while the
//! ones before it are on the wire, and the file is never held whole (benches/README.md,
//! "Close to the wire", has the figures). A server that refuses the encoding gets
//! object_store's upload instead, from then on.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::{BoxFuture, Shared};
use hmac::{KeyInit, Mac};
use object_store::aws::AwsCredentialProvider;
use object_store::path::Path;
use sha2::{Digest, Sha256};

use crate::storage::request::{self, RequestError, first_line, percent_encode, transport};
use crate::task;

type Hmac = hmac::Hmac<Sha256>;

/// The payload of each chunk but the last: reads and hashes of this size overlap the send,
/// and at most [`QUEUED`] of them wait for it.
const CHUNK: usize = 256 * 1024;
const QUEUED: usize = 4;
const STREAMING: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// The SHA-256 of nothing, which every chunk's string to sign carries.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What an upload sends.
pub(in crate::storage) enum Body {
    /// The file at this path, read as it is sent.
    File(PathBuf),
    Memory(Bytes),
}

/// Whether an upload may complete. Until it is decided, all but the last chunk go out; the
/// server cannot complete an object whose body broke off before its declared length.
pub(in crate::storage) type Proceed = Shared<BoxFuture<'static, bool>>;

/// Why an upload did not store the object.
#[derive(Debug)]
pub(in crate::storage) enum Failure {
    /// The file could not be read (or changed size while it was).
    Read(std::io::Error),
    Request(RequestError),
    /// Its [`Proceed`] said no: the body broke off before its last chunk.
    CalledOff,
}

/// Chunk-signed uploads to one bucket.
pub(in crate::storage) struct ChunkedPut {
    http: reqwest::Client,
    credentials: AwsCredentialProvider,
    region: String,
    /// `http://host:port/bucket` (path style) or `http://bucket.host:port`, no trailing `/`.
    bucket_url: String,
    /// Server-side encryption headers, sent and signed with every upload.
    encryption: Vec<(&'static str, String)>,
    /// Set once the server has refused the encoding.
    refused: AtomicBool,
}

impl ChunkedPut {
    pub(in crate::storage) fn new(
        http: reqwest::Client,
        credentials: AwsCredentialProvider,
        region: String,
        bucket_url: String,
        encryption: Vec<(&'static str, String)>,
    ) -> Self {
        ChunkedPut {
            http,
            credentials,
            region,
            bucket_url: bucket_url.trim_end_matches('/').to_string(),
            encryption,
            refused: AtomicBool::new(false),
        }
    }

    /// Whether uploads still go this way (the server has not refused the encoding).
    pub(in crate::storage) fn accepted(&self) -> bool {
        !self.refused.load(Ordering::Relaxed)
    }

    /// Stores `body` under `key` with `tags`; with `create_only`, only if nothing is stored
    /// there yet (`If-None-Match: *`), `Ok(false)` when something is; with `proceed`, only
    /// if it comes out `true`. `None` when the server does not take chunk-signed uploads:
    /// nothing was stored.
    pub(in crate::storage) async fn put(
        &self,
        key: &Path,
        body: &Body,
        tags: &[(String, String)],
        create_only: bool,
        proceed: Option<&Proceed>,
    ) -> Option<Result<bool, Failure>> {
        let url = format!("{}/{}", self.bucket_url, percent_encode(key.as_ref(), b"/"));
        let read_failure: Arc<Mutex<Option<std::io::Error>>> = Arc::default();
        let mut headers = self.encryption.clone();
        if !tags.is_empty() {
            let tagging = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(tags)
                .finish();
            headers.push(("x-amz-tagging", tagging));
        }
        if create_only {
            headers.push(("if-none-match", "*".into()));
        }
        tracing::debug!(
            "uploading '{key}' with its payload signed in {} KiB chunks",
            CHUNK / 1024
        );
        let (headers, url, read_failure) = (&headers, &url, &read_failure);
        let send = request::send(&self.http, None, explain, || async move {
            if read_failure.lock().expect("not poisoned").is_some() {
                // The body broke off because of our read, not the network: no retry.
                return Err(RequestError::other(
                    "the read of the object to upload failed",
                ));
            }
            let (size, source) = open(body).map_err(|e| {
                let message = e.to_string();
                *read_failure.lock().expect("not poisoned") = Some(e);
                RequestError::other(message)
            })?;
            let credential = self
                .credentials
                .get_credential()
                .await
                .map_err(|e| RequestError::credentials("S3", &e))?;
            let mut signer = Signer::new(&credential.secret_key, &self.region, Utc::now());
            let mut all = headers.clone();
            if let Some(token) = &credential.token {
                all.push(("x-amz-security-token", token.clone()));
            }
            let encoded = encoded_length(size, CHUNK as u64);
            let (authorization, all) =
                signer.authorize(&credential.key_id, url, all, size, encoded)?;
            let mut request = self
                .http
                .put(url)
                .header(reqwest::header::AUTHORIZATION, authorization);
            for (name, value) in all {
                request = request.header(name, value);
            }
            let stream = frames(signer, size, source, read_failure.clone(), proceed.cloned());
            request
                .body(reqwest::Body::wrap_stream(stream))
                .build()
                .map_err(transport)
        });
        let outcome = match proceed {
            None => send.await,
            // Called off: dropping the request closes its connection mid-body (the body
            // itself holds its last chunk back), rather than waiting out a retry.
            Some(proceed) => tokio::select! {
                outcome = send => outcome,
                false = proceed.clone() => return Some(Err(Failure::CalledOff)),
            },
        };
        if let Some(e) = read_failure.lock().expect("not poisoned").take() {
            return Some(Err(Failure::Read(e)));
        }
        Some(match outcome {
            Ok(response) if response.status().is_success() => Ok(true),
            // A redirect (`send` hands back GCS's 308) stores nothing.
            Ok(response) => Err(Failure::Request(RequestError {
                status: Some(response.status().as_u16()),
                ..RequestError::other(format!("unexpected answer {}", response.status()))
            })),
            Err(RequestError {
                status: Some(412), ..
            }) if create_only => Ok(false),
            Err(e) if refuses_encoding(&e) => {
                tracing::debug!(
                    "the S3 server refused a chunk-signed upload ({e}): uploading whole from now on"
                );
                self.refused.store(true, Ordering::Relaxed);
                return None;
            }
            Err(e) => Err(Failure::Request(e)),
        })
    }
}

/// Whether an answer says the server does not take the encoding (rather than that the
/// upload itself is wrong): object_store's whole upload is then tried, and reports any error
/// of the upload itself.
fn refuses_encoding(e: &RequestError) -> bool {
    match e.status {
        Some(400 | 411 | 501) => true,
        Some(403) => e.message.contains("SignatureDoesNotMatch"),
        _ => false,
    }
}

/// `Code: Message` of an S3 XML error body, without the rest (which can quote the request).
fn explain(body: &str) -> String {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find(&format!("</{name}>"))? + start;
        Some(body[start..end].to_string())
    };
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => first_line(body),
    }
}

/// What the payload is read from, and its size.
enum Source {
    File(std::fs::File),
    Memory(Bytes),
}

fn open(body: &Body) -> std::io::Result<(u64, Source)> {
    Ok(match body {
        Body::File(path) => {
            let file = std::fs::File::open(path)?;
            (file.metadata()?.len(), Source::File(file))
        }
        Body::Memory(data) => (data.len() as u64, Source::Memory(data.clone())),
    })
}

/// The `aws-chunked` body of `size` bytes from `source`: chunks are read and hashed on a
/// blocking thread, signed here in order. A read that fails or comes back short is put in
/// `failed` and ends the body with an error, so the server never completes the object; so
/// does a `proceed` that says no, awaited before the last chunk with data (or the empty one,
/// for an empty body).
fn frames(
    signer: Signer,
    size: u64,
    source: Source,
    failed: Arc<Mutex<Option<std::io::Error>>>,
    proceed: Option<Proceed>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<(Bytes, [u8; 32])>>(QUEUED);
    let read = task::blocking("reading an object to upload", move || {
        produce(source, size, &tx)
    });
    // The blocking task ends on its own once the body is dropped (its sends fail).
    drop(read);
    let state = (rx, signer.seed.clone(), 0u64, false, proceed);
    let signer = Arc::new(signer);
    let chunks = futures::stream::unfold(state, move |state| {
        let (signer, failed) = (signer.clone(), failed.clone());
        let (mut rx, previous, sent, done, mut proceed) = state;
        async move {
            if done {
                return None;
            }
            let chunk = match rx.recv().await {
                Some(chunk) => chunk,
                None if sent == size => Ok((Bytes::new(), Sha256::digest([]).into())),
                None => Err(std::io::Error::other(
                    "the read of the object to upload stopped early",
                )),
            };
            let (data, digest) = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    *failed.lock().expect("not poisoned") = Some(e);
                    let broken = vec![Err(std::io::Error::other("read failed"))];
                    return Some((broken, (rx, previous, sent, true, None)));
                }
            };
            let last_data = sent + data.len() as u64 == size;
            let go = match proceed.take_if(|_| last_data) {
                Some(decided) => decided.await,
                None => true,
            };
            if !go {
                let broken = vec![Err(std::io::Error::other("the upload was called off"))];
                return Some((broken, (rx, previous, sent, true, None)));
            }
            let signature = signer.chunk(&previous, &digest);
            let head = format!("{:x};chunk-signature={signature}\r\n", data.len());
            let (last, sent) = (data.is_empty(), sent + data.len() as u64);
            // The data goes out as it was read, between its header and CRLF, never copied.
            let frame = vec![
                Ok(Bytes::from(head)),
                Ok(data),
                Ok(Bytes::from_static(b"\r\n")),
            ];
            Some((frame, (rx, signature, sent, last, proceed)))
        }
    });
    chunks.flat_map(futures::stream::iter)
}

/// Reads `size` bytes from `source` in [`CHUNK`]s, each with its SHA-256, into `tx`.
fn produce(
    source: Source,
    size: u64,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<(Bytes, [u8; 32])>>,
) {
    let mut offset = 0u64;
    let mut source = source;
    let pool = Pool::default();
    while offset < size {
        let len = CHUNK.min((size - offset) as usize);
        let chunk = match &mut source {
            Source::Memory(data) => Ok(data.slice(offset as usize..offset as usize + len)),
            Source::File(file) => read_piece(file, len, &pool),
        };
        let item = chunk.map(|data| {
            let digest: [u8; 32] = Sha256::digest(&data).into();
            (data, digest)
        });
        let failed = item.is_err();
        if tx.blocking_send(item).is_err() || failed {
            return;
        }
        offset += len as u64;
    }
}

/// Chunk buffers the body is done with, for the next reads: an upload then touches the pages
/// of the few buffers in flight at once, not fresh ones for every chunk (a 16 MiB segment
/// was ~1,400 page faults, each zeroing a page).
#[derive(Clone, Default)]
struct Pool(Arc<Mutex<Vec<Vec<u8>>>>);

impl Pool {
    fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self
            .0
            .lock()
            .expect("not poisoned")
            .pop()
            .unwrap_or_default();
        buf.resize(len, 0);
        buf
    }
}

/// A chunk's data, back to its [`Pool`] once sent.
struct Pooled {
    data: Vec<u8>,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let data = std::mem::take(&mut self.data);
        self.pool.0.lock().expect("not poisoned").push(data);
    }
}

/// The next `len` bytes of `file`, in a buffer from `pool`.
fn read_piece(file: &mut std::fs::File, len: usize, pool: &Pool) -> std::io::Result<Bytes> {
    let mut buf = pool.take(len);
    file.read_exact(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            std::io::Error::new(e.kind(), "the file shrank while it was being uploaded")
        }
        _ => e,
    })?;
    let pool = pool.clone();
    Ok(Bytes::from_owner(Pooled { data: buf, pool }))
}

/// The signing of one upload: its date, scope and key, and the seed signature once the
/// headers are signed.
struct Signer {
    key: Hmac,
    date: String,
    scope: String,
    seed: String,
}

impl Signer {
    fn new(secret: &str, region: &str, now: DateTime<Utc>) -> Self {
        let day = now.format("%Y%m%d").to_string();
        let mut key = format!("AWS4{secret}").into_bytes();
        for part in [day.as_str(), region, "s3", "aws4_request"] {
            key = mac(&key, part.as_bytes()).to_vec();
        }
        Signer {
            key: Hmac::new_from_slice(&key).expect("HMAC takes any key"),
            date: now.format("%Y%m%dT%H%M%SZ").to_string(),
            scope: format!("{day}/{region}/s3/aws4_request"),
            seed: String::new(),
        }
    }

    /// Signs a PUT of `url` with `headers` and a body of `size` bytes, `encoded` once in
    /// chunks: returns the `Authorization` header and every header to send with it.
    fn authorize(
        &mut self,
        key_id: &str,
        url: &str,
        mut headers: Vec<(&'static str, String)>,
        size: u64,
        encoded: u64,
    ) -> request::Result<(String, Vec<(&'static str, String)>)> {
        let parsed = url::Url::parse(url)
            .map_err(|e| RequestError::other(format!("invalid S3 URL: {e}")))?;
        let host = parsed[url::Position::BeforeHost..url::Position::AfterPort].to_string();
        headers.extend([
            ("content-encoding", "aws-chunked".to_string()),
            ("content-length", encoded.to_string()),
            ("x-amz-content-sha256", STREAMING.to_string()),
            ("x-amz-date", self.date.clone()),
            ("x-amz-decoded-content-length", size.to_string()),
        ]);
        let mut signed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.trim()))
            .chain([("host", host.as_str())])
            .collect();
        signed.sort_unstable();
        let names: Vec<&str> = signed.iter().map(|(name, _)| *name).collect();
        let names = names.join(";");
        let canonical_headers: String = signed
            .iter()
            .map(|(name, value)| format!("{name}:{value}\n"))
            .collect();
        let canonical = format!(
            "PUT\n{}\n{}\n{canonical_headers}\n{names}\n{STREAMING}",
            parsed.path(),
            parsed.query().unwrap_or_default()
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{}\n{}",
            self.date,
            self.scope,
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        self.seed = self.sign(&to_sign);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={key_id}/{}, SignedHeaders={names}, Signature={}",
            self.scope, self.seed
        );
        Ok((authorization, headers))
    }

    /// The signature of a chunk whose payload hashes to `digest`, after `previous`.
    fn chunk(&self, previous: &str, digest: &[u8; 32]) -> String {
        self.sign(&format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{EMPTY_SHA256}\n{}",
            self.date,
            self.scope,
            hex(digest)
        ))
    }

    fn sign(&self, text: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(text.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::new_from_slice(key).expect("HMAC takes any key");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The length of the `aws-chunked` encoding of `size` bytes in `chunk`-byte chunks: each
/// chunk's size in hex, `;chunk-signature=`, 64 hex digits, CRLF, the data, CRLF; then the
/// empty last chunk.
fn encoded_length(size: u64, chunk: u64) -> u64 {
    let frame = |len: u64| format!("{len:x}").len() as u64 + 17 + 64 + 2 + len + 2;
    let rest = size % chunk;
    size / chunk * frame(chunk) + if rest > 0 { frame(rest) } else { 0 } + frame(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The chunk-signed PUT that AWS documents ("Signature Calculations ... Transferring
    /// Payload in Multiple Chunks"): 66,560 bytes of `a` in a 64 KiB chunk, a 1 KiB chunk and
    /// the empty last one, with its published signatures.
    #[test]
    fn signatures_match_the_aws_example() {
        let now = DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut signer = Signer::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", now);
        let headers = vec![("x-amz-storage-class", "REDUCED_REDUNDANCY".to_string())];
        let encoded = encoded_length(66560, 65536);
        assert_eq!(encoded, 66824);
        let (authorization, sent) = signer
            .authorize(
                "AKIAIOSFODNN7EXAMPLE",
                "http://s3.amazonaws.com/examplebucket/chunkObject.txt",
                headers,
                66560,
                encoded,
            )
            .unwrap();
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
             x-amz-decoded-content-length;x-amz-storage-class, \
             Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        );
        assert!(sent.contains(&("x-amz-decoded-content-length", "66560".to_string())));
        let first = signer.chunk(&signer.seed, &Sha256::digest([b'a'; 65536]).into());
        assert_eq!(
            first,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        let second = signer.chunk(&first, &Sha256::digest([b'a'; 1024]).into());
        assert_eq!(
            second,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
        let last = signer.chunk(&second, &Sha256::digest(b"").into());
        assert_eq!(
            last,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        );
    }

    /// The same signer each call: the encoding's and the decoding's must sign one date (with
    /// `Utc::now()`, a second boundary between them broke a test in CI).
    fn signer() -> Signer {
        let now = DateTime::parse_from_rfc3339("2026-12-04T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut signer = Signer::new("secret", "us-east-1", now);
        signer.seed = "0".repeat(64);
        signer
    }

    /// Decodes an `aws-chunked` body, checking that each chunk's signature follows from the
    /// one before it and its data.
    fn decode(signer: &Signer, body: &[u8]) -> Vec<u8> {
        let (mut rest, mut previous, mut data) = (body, signer.seed.clone(), Vec::new());
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let line = std::str::from_utf8(&rest[..line_end]).unwrap();
            let (size, signature) = line.split_once(";chunk-signature=").unwrap();
            let size = usize::from_str_radix(size, 16).unwrap();
            let chunk = &rest[line_end + 2..line_end + 2 + size];
            assert_eq!(
                signature,
                signer.chunk(&previous, &Sha256::digest(chunk).into())
            );
            assert_eq!(&rest[line_end + 2 + size..line_end + 4 + size], b"\r\n");
            data.extend_from_slice(chunk);
            rest = &rest[line_end + 4 + size..];
            previous = signature.to_string();
            if size == 0 {
                assert!(rest.is_empty(), "bytes after the last chunk");
                return data;
            }
        }
    }

    async fn encode(
        source: Source,
        size: u64,
    ) -> (Vec<std::io::Result<Bytes>>, Option<std::io::Error>) {
        let failed = Arc::default();
        let parts = frames(signer(), size, source, Arc::clone(&failed), None)
            .collect()
            .await;
        let failure = failed.lock().unwrap().take();
        (parts, failure)
    }

    #[tokio::test]
    async fn bodies_are_signed_chunks_of_the_declared_length() {
        for size in [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 7] {
            let data = Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
            let (parts, failure) = encode(Source::Memory(data.clone()), size as u64).await;
            assert!(failure.is_none());
            let body: Vec<u8> = parts.into_iter().flat_map(|p| p.unwrap()).collect();
            assert_eq!(
                body.len() as u64,
                encoded_length(size as u64, CHUNK as u64),
                "{size}"
            );
            assert_eq!(decode(&signer(), &body), data, "{size}");
        }
    }

    /// Read from a file, each chunk in a buffer an earlier chunk was sent from (the body's
    /// parts are dropped as they are taken, as hyper drops them once written).
    #[tokio::test]
    async fn file_bodies_reuse_buffers_without_mixing_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let size = 12 * CHUNK + 5;
        let data: Vec<u8> = (0..size).map(|i| (i / 4099 % 256) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let failed = Arc::default();
        let mut parts = Box::pin(frames(
            signer(),
            size as u64,
            Source::File(file),
            failed,
            None,
        ));
        let mut body = Vec::new();
        while let Some(part) = parts.next().await {
            body.extend_from_slice(&part.unwrap());
        }
        assert_eq!(body.len() as u64, encoded_length(size as u64, CHUNK as u64));
        assert_eq!(decode(&signer(), &body), data);

        let (mut file, pool) = (std::fs::File::open(&path).unwrap(), Pool::default());
        drop(read_piece(&mut file, CHUNK, &pool).unwrap());
        assert_eq!(
            pool.0.lock().unwrap().len(),
            1,
            "the buffer did not come back"
        );
        let shorter = read_piece(&mut file, 10, &pool).unwrap();
        assert!(
            pool.0.lock().unwrap().is_empty(),
            "the buffer was not reused"
        );
        assert_eq!(shorter, data[CHUNK..CHUNK + 10]);
    }

    #[tokio::test]
    async fn a_file_shorter_than_declared_ends_the_body_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        std::fs::write(&path, vec![7u8; CHUNK + 10]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let (parts, failure) = encode(Source::File(file), 3 * CHUNK as u64).await;
        assert!(parts.last().unwrap().is_err(), "the body ended cleanly");
        let failure = failure.expect("the short read is kept");
        assert_eq!(failure.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(failure.to_string().contains("shrank"), "{failure}");
    }

    #[tokio::test]
    async fn the_last_chunk_waits_until_the_upload_may_proceed() {
        use futures::FutureExt;
        let size = 3 * CHUNK as u64;
        let data = Bytes::from(vec![5u8; size as usize]);
        for go in [true, false] {
            let (decide, decided) = tokio::sync::oneshot::channel::<bool>();
            let proceed = async { decided.await.unwrap_or(false) }.boxed().shared();
            let failed = Arc::default();
            let source = Source::Memory(data.clone());
            let mut body = Box::pin(frames(signer(), size, source, failed, Some(proceed)));
            // Header, data and CRLF of each chunk but the last, then nothing until decided.
            let mut sent = Vec::new();
            for _ in 0..6 {
                sent.extend_from_slice(&body.next().await.unwrap().unwrap());
            }
            let waiting = tokio::time::timeout(Duration::from_millis(50), body.next()).await;
            assert!(waiting.is_err(), "the last chunk went out undecided");
            decide.send(go).unwrap();
            let rest: Vec<_> = body.collect().await;
            if go {
                sent.extend(rest.into_iter().flat_map(|p| p.unwrap()));
                assert_eq!(decode(&signer(), &sent), data);
            } else {
                assert_eq!(rest.len(), 1, "more than the error after the call-off");
                assert!(rest[0].is_err());
            }
        }
    }

    #[test]
    fn s3_error_bodies_give_their_code_and_message_only() {
        let body = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                    <Message>The specified bucket does not exist</Message>\
                    <BucketName>b</BucketName></Error>";
        assert_eq!(
            explain(body),
            "NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(explain("bad gateway\nmore"), "bad gateway");
    }
}
