//! The object store behind a destination URL, reached through `object_store`.
//!
//! [`Storage::open`] turns a [`Location`] plus the provider flags and the environment that
//! Barman's SDKs read into one client, built once per process. Every failure leaves this
//! module as a library [`Error`] whose variant says what happened (not found, missing bucket,
//! network), so callers never look at HTTP codes. Credentials are handed to `object_store`
//! (and, for the requests we send ourselves, only used to sign or authorize them) and never
//! formatted into a message.
//!
//! The files follow object_store's layout: one per provider (`s3/` with `aws_profile.rs`,
//! `azure.rs`, `gcs/`), the shared HTTP set-up (`client.rs`) and the requests we send
//! ourselves (`request.rs`), the options (`options.rs`), the two directions of a transfer
//! (`download.rs` with `low_speed.rs`, `upload.rs`), the `file://` whole-object writes
//! (`file.rs`), and the one place an error gets its meaning (`classify.rs`). This file is
//! only the facade, dispatching each call once to the backend behind it.

mod aws_profile;
mod azure;
pub mod blocking;
mod classify;
mod client;
mod credentials;
mod download;
mod file;
mod gcs;
mod location;
mod low_speed;
mod options;
mod request;
mod s3;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, TagSet,
    WriteMultipart,
};

pub use location::{Location, Provider, Target};
pub use options::{AddressingStyle, AzureCredential, S3Encryption, StorageOptions};
pub use upload::Upload;

use crate::buffer;
use crate::durable::CopyError;
use crate::error::{Error, Result};
use crate::task;
use classify::{classify, config};
use upload::Sink;

/// One client for one destination.
#[derive(Clone)]
pub struct Storage {
    backend: Backend,
    location: Location,
    /// See [`Storage::destination`].
    destination: String,
    /// `--read-timeout`, also the window of the downloads' speed floor (`low_speed.rs`).
    read_timeout: Duration,
    /// A `file://` store, whose whole-object writes are ours (`file.rs` says why).
    file: Option<Arc<LocalFileSystem>>,
    /// S3 over plain HTTP, whose whole-object writes are ours (`s3/chunked.rs` says why).
    chunked: Option<Arc<s3::ChunkedPut>>,
}

/// What requests go through: object_store's stores, or, for GCS, the JSON API (`gcs/json.rs`
/// says why), where object_store only supplies the credentials.
#[derive(Clone)]
enum Backend {
    Store {
        read: Arc<dyn ObjectStore>,
        /// Writes carry the encryption headers that Azure takes per request; reads must not.
        write: Arc<dyn ObjectStore>,
    },
    GcsJson(Arc<gcs::GcsJson>),
}

impl Backend {
    /// One store for reads and writes alike.
    fn store(store: Arc<dyn ObjectStore>) -> Self {
        Backend::Store {
            read: store.clone(),
            write: store,
        }
    }
}

/// What [`Storage::create`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The object is ours.
    Stored,
    /// Something was already stored under the key; it was left alone.
    Exists,
    /// [`Storage::create_copy`]'s `proceed` said no: nothing was stored.
    CalledOff,
}

/// Per-object attributes set on upload.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// `--tag`/`--tags` pairs: S3 object tags, Azure blob index tags, GCS custom metadata.
    pub tags: Vec<(String, String)>,
}

impl Storage {
    /// Builds the client for `location`. No request is sent.
    ///
    /// # Errors
    /// [`Error::Config`] when the credentials or options cannot be used,
    /// [`Error::BucketNotFound`] for a `file://` directory that does not exist.
    pub fn open(location: &Location, options: &StorageOptions) -> Result<Self> {
        register_secrets(location, options);
        tracing::info!("storage: {}", provider_and_endpoint(location, options));
        let (mut file, mut chunked) = (None, None);
        let backend = match &location.target {
            Target::S3 { bucket } => {
                let (store, put) = s3::store(bucket, options)?;
                chunked = put.map(Arc::new);
                Backend::store(store)
            }
            Target::Azure {
                account,
                container,
                endpoint,
            } => {
                let (read, write) =
                    azure::stores(account, container, endpoint.as_deref(), options)?;
                Backend::Store { read, write }
            }
            Target::Gcs { bucket } => Backend::GcsJson(Arc::new(gcs::json_api(bucket, options)?)),
            Target::File { root } => {
                if !root.is_dir() {
                    return Err(Error::BucketNotFound {
                        bucket: root.display().to_string(),
                    });
                }
                // Durability is the point of an archive: fsync files and their directories.
                let fs = LocalFileSystem::new_with_prefix(root)
                    .map_err(config("file"))?
                    .with_fsync(true);
                let fs = Arc::new(fs);
                file = Some(fs.clone());
                Backend::store(fs)
            }
            Target::Memory => Backend::store(Arc::new(InMemory::new())),
        };
        Ok(Self {
            backend,
            location: location.clone(),
            destination: destination(location, options),
            read_timeout: client::read_timeout(options),
            file,
            chunked,
        })
    }

    /// An empty store in memory, gone with the last clone of it: for tests and demos of the
    /// library (no command-line URL reaches it). It behaves as a `file://` store, without
    /// the staging.
    pub fn in_memory() -> Self {
        let location = Location {
            url: "memory:///".into(),
            target: Target::Memory,
            prefix: String::new(),
        };
        Self {
            backend: Backend::store(Arc::new(InMemory::new())),
            destination: location.url.clone(),
            location,
            read_timeout: client::read_timeout(&StorageOptions::default()),
            file: None,
            chunked: None,
        }
    }

    /// The destination this client writes to.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// One line naming where requests go: the URL and any endpoint override. State kept
    /// between calls (the pre-archiving spool) is only trusted for the same destination.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The provider whose limits this store follows: the URL's, and S3's for `file://` and
    /// memory stores, which take parts of any size and number (as Barman sizes S3's).
    pub fn provider(&self) -> Provider {
        match self.location.target {
            Target::Azure { .. } => Provider::AzureBlobStorage,
            Target::Gcs { .. } => Provider::GoogleCloudStorage,
            Target::S3 { .. } | Target::File { .. } | Target::Memory => Provider::AwsS3,
        }
    }

    /// The objects directly inside `dir` (not in its subdirectories).
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn list_dir(&self, dir: &Path) -> Result<Vec<ObjectMeta>> {
        self.list(dir, true).await
    }

    /// Every object under `dir`, recursively.
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn list_all(&self, dir: &Path) -> Result<Vec<ObjectMeta>> {
        self.list(dir, false).await
    }

    /// The objects under `dir`: one level of it, or everything below it.
    async fn list(&self, dir: &Path, one_level: bool) -> Result<Vec<ObjectMeta>> {
        let listed = match &self.backend {
            Backend::GcsJson(gcs) => {
                let listed = gcs.list(dir, one_level).await;
                return listed.map_err(|e| classify::request(e, "list", dir, &self.location));
            }
            Backend::Store { read, .. } if one_level => read
                .list_with_delimiter(Some(dir))
                .await
                .map(|listing| listing.objects),
            Backend::Store { read, .. } => read.list(Some(dir)).try_collect().await,
        };
        listed.map_err(|e| classify(e, "list", dir, &self.location))
    }

    /// Every object under `dir` whose key sorts at or before `last` (byte order). S3 and
    /// Azure list in key order, so the listing stops there and later pages are never
    /// requested; elsewhere everything is listed and filtered.
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn list_until(&self, dir: &Path, last: &str) -> Result<Vec<ObjectMeta>> {
        let sorted = matches!(
            self.location.target,
            Target::S3 { .. } | Target::Azure { .. }
        );
        match &self.backend {
            Backend::Store { read, .. } if sorted => read
                .list(Some(dir))
                .try_take_while(|meta| futures::future::ready(Ok(meta.location.as_ref() <= last)))
                .try_collect()
                .await
                .map_err(|e| classify(e, "list", dir, &self.location)),
            _ => {
                let mut all = self.list_all(dir).await?;
                all.retain(|meta| meta.location.as_ref() <= last);
                Ok(all)
            }
        }
    }

    /// Reads a whole object.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] when it does not exist, or other storage errors.
    pub async fn get(&self, key: &Path) -> Result<Bytes> {
        let (_, mut stream) = self.stream(key).await?;
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.try_next().await? {
            chunks.push(chunk);
        }
        Ok(match chunks.len() {
            1 => chunks.pop().expect("one chunk"),
            _ => Bytes::from(chunks.concat()),
        })
    }

    /// An object's size and its body as the store sends it, so a large object is never held
    /// whole. Through object_store, a body that breaks off is resumed from the last byte
    /// received, pinned to the same version by its ETag, up to five times, and the stream
    /// ends only once every byte of the object has been delivered; a broken GCS body fails
    /// the read.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] or other storage errors, from this call or from the stream.
    pub async fn stream(&self, key: &Path) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        let (size, body) = match &self.backend {
            Backend::GcsJson(gcs) => download::gcs(gcs, key, &self.location).await?,
            Backend::Store { read, .. } => {
                download::resumable(read.clone(), key, &self.location).await?
            }
        };
        // Around the resumptions: a stalled server is not worth asking again.
        let what = format!("{} (reading '{key}')", self.location.url_for_messages());
        Ok((size, low_speed::guard(body, self.read_timeout, what)))
    }

    /// Deletes one object (a missing one is not an error).
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn delete(&self, key: &Path) -> Result<()> {
        let outcome = match &self.backend {
            Backend::GcsJson(gcs) => gcs
                .delete(key)
                .await
                .map_err(|e| classify::request(e, "delete", key, &self.location)),
            Backend::Store { write, .. } => write
                .delete(key)
                .await
                .map_err(|e| classify(e, "delete", key, &self.location)),
        };
        match outcome {
            Err(Error::ObjectNotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// The most objects one delete request may name on this provider: Barman's limits
    /// (S3's DeleteObjects, Azure's blob batch, GCS's batch endpoint); files have none.
    pub fn max_delete_batch(&self) -> usize {
        match self.location.target {
            Target::S3 { .. } | Target::File { .. } | Target::Memory => 1000,
            Target::Azure { .. } => 256,
            Target::Gcs { .. } => 100,
        }
    }

    /// Whether WAL cleanup may delete a whole hash directory by prefix, a shortcut Barman
    /// takes on S3 only (elsewhere it deletes the files one name at a time).
    pub fn deletes_by_prefix(&self) -> bool {
        matches!(self.location.target, Target::S3 { .. })
    }

    /// Deletes `keys` in requests naming at most `batch_size` objects (clamped to
    /// [`Storage::max_delete_batch`]): one DeleteObjects request per batch on S3, one blob
    /// batch on Azure, concurrent JSON-API deletes on GCS, unlinks for files. A few batches
    /// run at once. An object that is already gone is not an error.
    ///
    /// # Errors
    /// Every key is tried; the first failure is returned and the others are logged.
    pub async fn delete_many(&self, keys: &[Path], batch_size: usize) -> Result<()> {
        const BATCHES_IN_FLIGHT: usize = 4;
        let batch_size = batch_size.clamp(1, self.max_delete_batch());
        let failures: Vec<Error> = futures::stream::iter(keys.chunks(batch_size))
            .map(|batch| self.delete_batch(batch))
            .buffered(BATCHES_IN_FLIGHT)
            .flat_map(futures::stream::iter)
            .collect()
            .await;
        let mut failures = failures.into_iter();
        let first = failures.next();
        for e in failures {
            tracing::error!("{e}");
        }
        first.map_or(Ok(()), Err)
    }

    /// One batch of [`Storage::delete_many`]: the failures, missing objects left out.
    async fn delete_batch(&self, batch: &[Path]) -> Vec<Error> {
        // GCS deletes are single requests; this many run at once.
        const GCS_DELETES_IN_FLIGHT: usize = 16;
        let outcomes: Vec<Result<()>> = match &self.backend {
            Backend::GcsJson(gcs) => {
                futures::stream::iter(batch)
                    .map(|key| async move {
                        gcs.delete(key)
                            .await
                            .map_err(|e| classify::request(e, "delete", key, &self.location))
                    })
                    .buffer_unordered(GCS_DELETES_IN_FLIGHT)
                    .collect()
                    .await
            }
            Backend::Store { write, .. } => {
                let keys: Vec<object_store::Result<Path>> = batch.iter().cloned().map(Ok).collect();
                let keys = futures::stream::iter(keys).boxed();
                let first = batch.first().cloned().unwrap_or_default();
                write
                    .delete_stream(keys)
                    .map(|outcome| {
                        outcome
                            .map(drop)
                            .map_err(|e| classify(e, "delete", &first, &self.location))
                    })
                    .collect()
                    .await
            }
        };
        outcomes
            .into_iter()
            .filter_map(Result::err)
            .filter(|e| !matches!(e, Error::ObjectNotFound { .. }))
            .collect()
    }

    /// Stores a whole object, returning only once the store has confirmed it.
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn put(&self, key: &Path, data: Bytes, options: &WriteOptions) -> Result<()> {
        self.put_whole(key, data, options, false).await.map(drop)
    }

    /// Stores a whole object only if nothing is stored under `key` yet, in one step the store
    /// decides: S3 and Azure by `If-None-Match: *`, GCS by `ifGenerationMatch=0`, files by a
    /// hard link that fails on an existing name. Of two writers racing for one key, exactly
    /// one gets [`Created::Stored`]. (A store that ignores the condition, as some S3-compatible
    /// servers and the GCS emulator do, overwrites: nothing on our side can tell.)
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn create(&self, key: &Path, data: Bytes, options: &WriteOptions) -> Result<Created> {
        let stored = self.put_whole(key, data, options, true).await?;
        Ok(if stored {
            Created::Stored
        } else {
            Created::Exists
        })
    }

    /// One whole-object upload; `Ok(false)` when `create_only` found the key taken.
    async fn put_whole(
        &self,
        key: &Path,
        data: Bytes,
        options: &WriteOptions,
        create_only: bool,
    ) -> Result<bool> {
        if let Some(fs) = &self.file {
            return self.put_file(fs, key, data, create_only).await;
        }
        let body = s3::Body::Memory(data.clone());
        if let Some(stored) = self
            .put_chunked(key, &body, options, create_only, None)
            .await
        {
            return stored.map_err(|e| match e {
                s3::Failure::Request(e) => classify::request(e, "upload", key, &self.location),
                // Only a reader that stopped unexpectedly: the data is in memory.
                s3::Failure::Read(e) => Error::Storage {
                    action: "upload",
                    key: key.to_string(),
                    source: Box::new(e),
                },
                // Not given a `proceed`, this upload is never called off.
                s3::Failure::CalledOff => Error::Storage {
                    action: "upload",
                    key: key.to_string(),
                    source: "the upload was called off".into(),
                },
            });
        }
        let outcome = match &self.backend {
            Backend::GcsJson(gcs) => gcs
                .put(key, data, &options.tags, create_only)
                .await
                .map_err(|e| match e.status {
                    Some(412) if create_only => None,
                    _ => Some(classify::request(e, "upload", key, &self.location)),
                }),
            Backend::Store { write, .. } => {
                let put = PutOptions {
                    mode: if create_only {
                        PutMode::Create
                    } else {
                        PutMode::Overwrite
                    },
                    tags: self.tags(options),
                    ..Default::default()
                };
                write
                    .put_opts(key, data.into(), put)
                    .await
                    .map(drop)
                    .map_err(|e| match e {
                        object_store::Error::AlreadyExists { .. }
                        | object_store::Error::Precondition { .. }
                            if create_only =>
                        {
                            None
                        }
                        e => Some(classify(e, "upload", key, &self.location)),
                    })
            }
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(None) => Ok(false),
            Err(Some(e)) => Err(e),
        }
    }

    /// A chunk-signed upload (S3 over plain HTTP), `None` when the store takes none (or the
    /// server has just refused it: nothing was stored, object_store's upload comes next).
    async fn put_chunked(
        &self,
        key: &Path,
        body: &s3::Body,
        options: &WriteOptions,
        create_only: bool,
        proceed: Option<&s3::Proceed>,
    ) -> Option<std::result::Result<bool, s3::Failure>> {
        let chunked = self.chunked.as_ref().filter(|c| c.accepted())?;
        chunked
            .put(key, body, &options.tags, create_only, proceed)
            .await
    }

    /// [`Storage::put_whole`] for a `file://` store (no tags: files have none).
    async fn put_file(
        &self,
        fs: &LocalFileSystem,
        key: &Path,
        data: Bytes,
        create_only: bool,
    ) -> Result<bool> {
        let dest = fs
            .path_to_filesystem(key)
            .map_err(|e| classify(e, "upload", key, &self.location))?;
        task::blocking("writing a file", move || {
            file::put(&dest, &data, create_only)
        })
        .await?
        .map_err(|source| Error::Storage {
            action: "upload",
            key: key.to_string(),
            source: Box::new(source),
        })
    }

    /// Whether [`Storage::create_copy`] copies a file in pieces (a `file://` store, S3 over
    /// plain HTTP) rather than reading it whole first.
    pub fn copies_files(&self) -> bool {
        self.file.is_some() || self.chunked.as_ref().is_some_and(|c| c.accepted())
    }

    /// [`Storage::create`] of the file at `source`; a failure to read it is an
    /// [`Error::Io`] with `read_action` ("read WAL file"). The object is stored only if
    /// `proceed` comes out `true` ([`Created::CalledOff`] otherwise). A chunk-signed upload
    /// sends all but its last chunk while `proceed` is undecided; every other upload starts
    /// once it is decided.
    ///
    /// # Errors
    /// [`Error::Io`] for the source, storage errors, classified, for the store.
    pub async fn create_copy(
        &self,
        key: &Path,
        source: &std::path::Path,
        read_action: &'static str,
        options: &WriteOptions,
        proceed: impl Future<Output = bool> + Send + 'static,
    ) -> Result<Created> {
        let proceed = proceed.boxed().shared();
        let body = s3::Body::File(source.to_path_buf());
        if let Some(stored) = self
            .put_chunked(key, &body, options, true, Some(&proceed))
            .await
        {
            return match stored {
                Ok(true) => Ok(Created::Stored),
                Ok(false) => Ok(Created::Exists),
                Err(s3::Failure::CalledOff) => Ok(Created::CalledOff),
                Err(s3::Failure::Read(e)) => Err(Error::io(read_action, source)(e)),
                Err(s3::Failure::Request(e)) => {
                    Err(classify::request(e, "upload", key, &self.location))
                }
            };
        }
        if !proceed.await {
            return Ok(Created::CalledOff);
        }
        let Some(fs) = &self.file else {
            let path = source.to_path_buf();
            let data = task::blocking("reading a file", move || buffer::read_file(&path))
                .await?
                .map_err(Error::io(read_action, source))?;
            return self.create(key, data.into(), options).await;
        };
        let dest = fs
            .path_to_filesystem(key)
            .map_err(|e| classify(e, "upload", key, &self.location))?;
        let from = source.to_path_buf();
        let copied = task::blocking("copying a file", move || file::copy(&dest, &from, true));
        match copied.await? {
            Ok(true) => Ok(Created::Stored),
            Ok(false) => Ok(Created::Exists),
            Err(CopyError::Read(e)) => Err(Error::io(read_action, source)(e)),
            Err(CopyError::Write(e)) => Err(Error::Storage {
                action: "upload",
                key: key.to_string(),
                source: Box::new(e),
            }),
        }
    }

    /// Starts a streamed upload in `chunk_size` parts, at most `concurrency` in flight: memory
    /// stays at about `chunk_size * (concurrency + 1)` whatever the object's size. The object
    /// appears only when [`Upload::finish`] returns (a `file://` upload is staged and renamed).
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn upload(
        &self,
        key: &Path,
        options: &WriteOptions,
        chunk_size: usize,
        concurrency: usize,
    ) -> Result<Upload> {
        let sink = match &self.backend {
            Backend::GcsJson(gcs) => {
                let upload = gcs
                    .start_upload(key, &options.tags)
                    .await
                    .map_err(|e| classify::request(e, "upload", key, &self.location))?;
                Sink::Gcs { upload, chunk_size }
            }
            Backend::Store { write, .. } => {
                let opts = PutMultipartOptions {
                    tags: self.tags(options),
                    ..Default::default()
                };
                let multipart = write
                    .put_multipart_opts(key, opts)
                    .await
                    .map_err(|e| classify(e, "upload", key, &self.location))?;
                Sink::Multipart {
                    write: WriteMultipart::new_with_chunk_size(multipart, chunk_size),
                    concurrency: concurrency.max(1),
                }
            }
        };
        Ok(Upload::new(sink, self.location.clone(), key.clone()))
    }

    /// Tags as object_store's stores keep them: S3 object tags and Azure blob index tags;
    /// files have none. (GCS's, custom metadata as Barman stores them, go by `gcs/json.rs`.)
    fn tags(&self, options: &WriteOptions) -> TagSet {
        let mut tags = TagSet::default();
        if matches!(
            self.location.target,
            Target::S3 { .. } | Target::Azure { .. }
        ) {
            for (k, v) in &options.tags {
                tags.push(k, v);
            }
        }
        tags
    }

    /// Checks that the endpoint answers and the bucket exists (`-t/--test`).
    ///
    /// # Errors
    /// [`Error::Connection`] when unreachable, [`Error::BucketCheckFailed`] when missing.
    pub async fn check(&self) -> Result<()> {
        self.probe().await.map_err(Error::during_test)
    }

    /// One cheap request (a listing of the destination's first level), for a command about to
    /// ask PostgreSQL for work, such as a checkpoint, that is wasted if the store is away.
    ///
    /// # Errors
    /// [`Error::Connection`] when unreachable, [`Error::BucketNotFound`] when missing.
    pub async fn probe(&self) -> Result<()> {
        let root = Path::from(self.location.prefix.trim_matches('/'));
        self.list_dir(&root).await.map(drop)
    }

    /// Removes what writers killed mid-write left below `dir` of a `file://` store (and
    /// nothing elsewhere): each upload is staged as `<name>#<n>` and renamed into place, so a
    /// SIGKILL leaves the staged file behind, unseen by listings, for good. A file untouched
    /// for `untouched_for` is taken for such a leftover: the caller chooses how long a live
    /// writer may leave its file idle. Best effort: what cannot be removed now is left for a
    /// later run.
    pub async fn sweep_staging(&self, dir: &Path, untouched_for: Duration) {
        let Target::File { root } = &self.location.target else {
            return;
        };
        let dir = root.join(dir.as_ref());
        let swept = task::blocking("sweeping staged uploads", move || {
            upload::sweep_staged_files(&dir, untouched_for)
        });
        if let Ok(removed) = swept.await {
            for path in removed {
                tracing::info!(
                    "removed '{}', left by a writer that was killed",
                    path.display()
                );
            }
        }
    }
}

/// `aws-s3 at http://127.0.0.1:5000 for s3://bucket/prefix`: the provider, where its requests
/// go, and the destination, without query strings (a SAS token would live there).
fn provider_and_endpoint(location: &Location, options: &StorageOptions) -> String {
    let (provider, endpoint) = match &location.target {
        Target::S3 { .. } => (
            "aws-s3",
            s3::endpoint(options).unwrap_or_else(|| "the AWS endpoint of the region".into()),
        ),
        Target::Azure {
            account, endpoint, ..
        } => (
            "azure-blob-storage",
            endpoint
                .clone()
                .or_else(|| azure::emulator_endpoint(options))
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net")),
        ),
        Target::Gcs { .. } => ("google-cloud-storage", gcs::base_url(options)),
        Target::File { root } => ("file", root.display().to_string()),
        Target::Memory => ("memory", "this process".into()),
    };
    let endpoint = endpoint.split('?').next().unwrap_or_default();
    format!(
        "{provider} at {endpoint} for {}",
        location.url_for_messages()
    )
}

/// See [`Storage::destination`].
fn destination(location: &Location, options: &StorageOptions) -> String {
    let endpoint = match location.target {
        Target::S3 { .. } => s3::endpoint(options),
        Target::Azure { .. } => azure::emulator_endpoint(options),
        Target::Gcs { .. } => options.var("STORAGE_EMULATOR_HOST"),
        Target::File { .. } | Target::Memory => None,
    }
    .unwrap_or_default();
    format!("{} {endpoint}", location.url).replace(['\n', '\r'], " ")
}

/// Tells the log's redaction about the credentials this client was handed directly (an
/// embedding program's variables, a SAS token in the URL): the process environment's are
/// registered at start-up.
fn register_secrets(location: &Location, options: &StorageOptions) {
    for (name, value) in &options.env {
        if crate::redact::is_secret_var(name) {
            crate::redact::register(value);
        }
    }
    if let Some((_, query)) = location.url.split_once('?') {
        crate::redact::register(query);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_memory_store_keeps_what_it_is_given() {
        let storage = Storage::in_memory();
        let key = Path::from("pg/wals/0000000100000000/000000010000000000000001");
        let data = Bytes::from_static(b"wal");
        let none = WriteOptions::default();
        let created = storage.create(&key, data.clone(), &none).await.unwrap();
        assert_eq!(created, Created::Stored);
        let again = storage.create(&key, data.clone(), &none).await.unwrap();
        assert_eq!(again, Created::Exists);
        assert_eq!(storage.get(&key).await.unwrap(), data);
        let listed = storage.list_all(&Path::from("pg")).await.unwrap();
        assert_eq!(listed.len(), 1);
        storage
            .delete_many(std::slice::from_ref(&key), 10)
            .await
            .unwrap();
        assert!(matches!(
            storage.get(&key).await,
            Err(Error::ObjectNotFound { .. })
        ));
        assert_eq!(storage.provider(), Provider::AwsS3);
    }
}
