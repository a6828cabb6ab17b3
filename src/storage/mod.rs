//! The object store behind a destination URL, reached through `object_store`.
//!
//! [`Storage::open`] turns a [`Location`] plus the provider flags and the environment that
//! Barman's SDKs read into one client, built once per process. Every failure leaves this
//! module as a library [`Error`] whose variant says what happened (not found, missing bucket,
//! network), so callers never look at HTTP codes. Credentials are handed to `object_store`
//! and never formatted into a message.

mod aws_profile;
pub mod blocking;
mod gcs;
mod http;
mod location;
mod low_speed;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, GetRange, GetResult,
    GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions,
    PutOptions, RetryConfig, StaticCredentialProvider, TagSet, WriteMultipart,
};

pub use location::{Location, Provider, Target};

use crate::error::{Error, Result};

/// `--addressing-style` for S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AddressingStyle {
    /// Virtual-hosted on AWS, path style with `--endpoint-url`.
    #[default]
    Auto,
    /// `https://BUCKET.host/key`.
    Virtual,
    /// `https://host/BUCKET/key`.
    Path,
}

/// `--azure-credential` (aliases `--credential`, `--default`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AzureCredential {
    /// The `az` command line's login.
    AzureCli,
    /// The VM's or pod's managed identity.
    ManagedIdentity,
    /// The default chain (environment, workload identity, managed identity, CLI).
    Default,
}

/// `-e/--encryption` for S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum S3Encryption {
    /// SSE-S3.
    #[value(name = "AES256")]
    Aes256,
    /// SSE-KMS.
    #[value(name = "aws:kms")]
    AwsKms,
}

/// How to reach the store: the provider flags every command shares, plus the server-side
/// encryption flags of the commands that write.
#[derive(Debug, Clone, Default)]
pub struct StorageOptions {
    /// `--cloud-provider`.
    pub provider: Provider,
    /// `--endpoint-url`, for S3-compatible servers.
    pub endpoint_url: Option<String>,
    /// `-P/--aws-profile`.
    pub aws_profile: Option<String>,
    /// `--read-timeout`.
    pub read_timeout: Option<Duration>,
    /// `--addressing-style`.
    pub addressing_style: AddressingStyle,
    /// `--azure-credential`.
    pub azure_credential: Option<AzureCredential>,
    /// `-e/--encryption`.
    pub s3_encryption: Option<S3Encryption>,
    /// `--sse-kms-key-id`.
    pub sse_kms_key_id: Option<String>,
    /// `--encryption-scope` (Azure).
    pub encryption_scope: Option<String>,
    /// `--kms-key-name` (GCS).
    pub kms_key_name: Option<String>,
    /// Variables that take precedence over the process environment when credentials and
    /// endpoints are read: lets an embedding program (the CloudNativePG sidecar, a test) give
    /// each client its own credentials without touching the process environment.
    pub env: Vec<(String, String)>,
}

impl StorageOptions {
    /// A variable from the overrides, else from the process environment; empty counts as unset.
    fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }
}

/// One client for one destination.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// Writes carry the encryption headers that Azure and GCS take per request; reads must not.
    writer: Arc<dyn ObjectStore>,
    /// GCS listing and streamed uploads (see `gcs.rs` for why not object_store's).
    gcs: Option<Arc<gcs::GcsJson>>,
    location: Location,
    /// See [`Storage::destination`].
    destination: String,
    /// `--read-timeout`, also the window of the downloads' speed floor (`low_speed.rs`).
    read_timeout: Duration,
}

/// What [`Storage::create`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The object is ours.
    Stored,
    /// Something was already stored under the key; it was left alone.
    Exists,
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
        let client = client_options(options);
        let mut gcs = None;
        let (store, writer): (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>) = match &location.target {
            Target::S3 { bucket } => {
                let s3 = Arc::new(
                    s3_builder(bucket, options)?
                        .with_client_options(client)
                        .with_http_connector(connector(options))
                        .build()
                        .map_err(config("S3"))?,
                );
                (s3.clone(), s3)
            }
            Target::Azure {
                account,
                container,
                endpoint,
            } => {
                let build = |client: ClientOptions| {
                    azure_builder(account, container, endpoint.as_deref(), options)?
                        .with_client_options(client)
                        .with_http_connector(connector(options))
                        .build()
                        .map_err(config("Azure"))
                };
                let reader = Arc::new(build(client.clone())?);
                match &options.encryption_scope {
                    Some(scope) => {
                        let w =
                            Arc::new(build(with_header(client, "x-ms-encryption-scope", scope)?)?);
                        (reader, w)
                    }
                    None => (reader.clone(), reader),
                }
            }
            Target::Gcs { bucket } => {
                // Requests go to the JSON API (gcs.rs); object_store's store only provides
                // the credentials, over the same HTTP client.
                let base = gcs_base_url(options);
                let http_client =
                    gcs::client(&base, ca_bundle(options).as_deref(), read_timeout(options))
                        .map_err(|message| Error::Config {
                            provider: "GCS",
                            message,
                        })?;
                let store = gcs_builder(bucket, options)
                    .with_client_options(client)
                    .with_http_connector(http::SharedClient(http_client.clone()))
                    .build()
                    .map_err(config("GCS"))?;
                gcs = Some(Arc::new(gcs::GcsJson::new(
                    http_client,
                    &base,
                    bucket,
                    store.credentials().clone(),
                    options.kms_key_name.clone(),
                )));
                let store = Arc::new(store);
                (store.clone(), store)
            }
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
                (fs.clone(), fs)
            }
        };
        Ok(Self {
            store,
            writer,
            gcs,
            location: location.clone(),
            destination: destination(location, options),
            read_timeout: read_timeout(options),
        })
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

    /// The objects directly inside `dir` (not in its subdirectories).
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn list_dir(&self, dir: &Path) -> Result<Vec<ObjectMeta>> {
        self.list_level(dir).await.map(|(objects, _)| objects)
    }

    /// One level of `dir`: its objects and its "subdirectories" (common prefixes).
    async fn list_level(&self, dir: &Path) -> Result<(Vec<ObjectMeta>, Vec<Path>)> {
        if let Some(gcs) = &self.gcs {
            let listing = gcs.list(dir, true).await;
            return listing
                .map(|l| (l.objects, l.prefixes))
                .map_err(|e| self.gcs_error(e, "list", dir));
        }
        let listing = self
            .store
            .list_with_delimiter(Some(dir))
            .await
            .map_err(|e| classify(e, "list", dir, &self.location))?;
        Ok((listing.objects, listing.common_prefixes))
    }

    /// Every object under `dir`, recursively.
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn list_all(&self, dir: &Path) -> Result<Vec<ObjectMeta>> {
        if let Some(gcs) = &self.gcs {
            let listing = gcs.list(dir, false).await;
            return listing
                .map(|l| l.objects)
                .map_err(|e| self.gcs_error(e, "list", dir));
        }
        self.store
            .list(Some(dir))
            .try_collect()
            .await
            .map_err(|e| classify(e, "list", dir, &self.location))
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
        if !sorted {
            let mut all = self.list_all(dir).await?;
            all.retain(|meta| meta.location.as_ref() <= last);
            return Ok(all);
        }
        self.store
            .list(Some(dir))
            .try_take_while(|meta| futures::future::ready(Ok(meta.location.as_ref() <= last)))
            .try_collect()
            .await
            .map_err(|e| classify(e, "list", dir, &self.location))
    }

    /// Reads a whole object.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] when it does not exist, or other storage errors.
    pub async fn get(&self, key: &Path) -> Result<Bytes> {
        let mut stream = self.get_stream(key).await?;
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.try_next().await? {
            chunks.push(chunk);
        }
        Ok(match chunks.len() {
            1 => chunks.pop().expect("one chunk"),
            _ => Bytes::from(chunks.concat()),
        })
    }

    /// Reads an object as a stream of chunks, so large objects need not fit in memory.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] when it does not exist, or other storage errors, at the start
    /// or while streaming.
    pub async fn get_stream(&self, key: &Path) -> Result<BoxStream<'static, Result<Bytes>>> {
        if self.gcs.is_some() {
            return self.gcs_stream(key).await.map(|(_, stream)| stream);
        }
        let result = self
            .store
            .get(key)
            .await
            .map_err(|e| classify(e, "download", key, &self.location))?;
        let (location, owned_key) = (self.location.clone(), key.clone());
        let body = body_stream(result)
            .map_err(move |e| classify(e, "download", &owned_key, &location))
            .boxed();
        Ok(self.speed_guarded(body, key))
    }

    /// `body` with the speed floor of `low_speed.rs`.
    fn speed_guarded(
        &self,
        body: BoxStream<'static, Result<Bytes>>,
        key: &Path,
    ) -> BoxStream<'static, Result<Bytes>> {
        let what = format!("{} (reading '{key}')", self.location.url_for_messages());
        low_speed::guard(body, self.read_timeout, what)
    }

    /// Deletes one object (a missing one is not an error).
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn delete(&self, key: &Path) -> Result<()> {
        let outcome = match &self.gcs {
            Some(gcs) => gcs
                .delete(key)
                .await
                .map_err(|e| self.gcs_error(e, "delete", key)),
            None => self
                .writer
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
            Target::S3 { .. } | Target::File { .. } => 1000,
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
        let outcomes: Vec<Result<()>> = match &self.gcs {
            Some(gcs) => {
                futures::stream::iter(batch)
                    .map(|key| async move {
                        gcs.delete(key)
                            .await
                            .map_err(|e| self.gcs_error(e, "delete", key))
                    })
                    .buffer_unordered(GCS_DELETES_IN_FLIGHT)
                    .collect()
                    .await
            }
            None => {
                let keys: Vec<object_store::Result<Path>> = batch.iter().cloned().map(Ok).collect();
                let keys = futures::stream::iter(keys).boxed();
                let first = batch.first().cloned().unwrap_or_default();
                self.writer
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
        let outcome = if let Some(gcs) = &self.gcs {
            gcs.put(key, data, &options.tags, create_only)
                .await
                .map_err(|e| match e.status {
                    Some(412) if create_only => None,
                    _ => Some(self.gcs_error(e, "upload", key)),
                })
        } else {
            let (tags, attributes) = self.object_attributes(options);
            let put = PutOptions {
                mode: if create_only {
                    PutMode::Create
                } else {
                    PutMode::Overwrite
                },
                tags,
                attributes,
                ..Default::default()
            };
            self.writer
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
        };
        match outcome {
            Ok(()) => Ok(true),
            Err(None) => Ok(false),
            Err(Some(e)) => Err(e),
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
        let sink = if let Some(gcs) = &self.gcs {
            let upload = gcs
                .start_upload(key, &options.tags)
                .await
                .map_err(|e| self.gcs_error(e, "upload", key))?;
            Sink::Gcs { upload, chunk_size }
        } else {
            let (tags, attributes) = self.object_attributes(options);
            let opts = PutMultipartOptions {
                tags,
                attributes,
                ..Default::default()
            };
            let multipart = self
                .writer
                .put_multipart_opts(key, opts)
                .await
                .map_err(|e| classify(e, "upload", key, &self.location))?;
            Sink::Multipart {
                write: WriteMultipart::new_with_chunk_size(multipart, chunk_size),
                concurrency: concurrency.max(1),
            }
        };
        Ok(Upload {
            sink,
            storage: self.clone(),
            key: key.clone(),
        })
    }

    /// A GCS object's size and body (no resume: a broken GCS body fails the read).
    async fn gcs_stream(&self, key: &Path) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        let gcs = self.gcs.as_ref().expect("a GCS store");
        let response = gcs
            .get(key)
            .await
            .map_err(|e| self.gcs_error(e, "download", key))?;
        let size = response.content_length().unwrap_or(0);
        let (storage, owned_key) = (self.clone(), key.clone());
        let stream = response
            .bytes_stream()
            .map_err(move |e| Error::Connection {
                message: format!(
                    "{} (reading '{owned_key}': {})",
                    storage.location.url_for_messages(),
                    e.without_url()
                ),
            })
            .boxed();
        Ok((size, self.speed_guarded(stream, key)))
    }

    fn gcs_error(&self, e: gcs::GcsError, action: &'static str, key: &Path) -> Error {
        if e.connect {
            return Error::Connection {
                message: format!("{} ({})", self.location.url_for_messages(), e.message),
            };
        }
        match e.status {
            Some(401 | 403) => Error::AccessDenied {
                action,
                key: key.to_string(),
            },
            // Listing names no object, so its 404 can only be the bucket's.
            Some(404) if action == "list" => Error::BucketNotFound {
                bucket: self.location.bucket(),
            },
            Some(404) => Error::ObjectNotFound {
                key: key.to_string(),
            },
            _ => Error::Storage {
                action,
                key: key.to_string(),
                message: e.message,
            },
        }
    }

    /// Tags as each provider stores them: S3 object tags and Azure blob index tags; GCS has
    /// none, so Barman stores them as custom metadata; files have neither.
    fn object_attributes(&self, options: &WriteOptions) -> (TagSet, Attributes) {
        let mut tags = TagSet::default();
        let mut attributes = Attributes::new();
        if self.is_gcs() {
            for (k, v) in &options.tags {
                attributes.insert(Attribute::Metadata(k.clone().into()), v.clone().into());
            }
        } else if !matches!(self.location.target, Target::File { .. }) {
            for (k, v) in &options.tags {
                tags.push(k, v);
            }
        }
        (tags, attributes)
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
        self.list_level(&root).await.map(drop)
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
        let swept = tokio::task::spawn_blocking(move || sweep_staged_files(&dir, untouched_for));
        if let Ok(removed) = swept.await {
            for path in removed {
                tracing::info!(
                    "removed '{}', left by a writer that was killed",
                    path.display()
                );
            }
        }
    }

    fn is_gcs(&self) -> bool {
        matches!(self.location.target, Target::Gcs { .. })
    }
}

/// An object being uploaded in parts; see [`Storage::upload`].
pub struct Upload {
    sink: Sink,
    storage: Storage,
    key: Path,
}

enum Sink {
    Multipart {
        write: WriteMultipart,
        concurrency: usize,
    },
    // Resumable uploads take their requests one after the other (Barman uses one job on GCS).
    Gcs {
        upload: gcs::ResumableUpload,
        chunk_size: usize,
    },
}

impl Upload {
    /// Queues `data`, waiting first while `concurrency` parts are in flight.
    ///
    /// # Errors
    /// A part upload failed (the caller should [`Upload::abort`]).
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        match &mut self.sink {
            Sink::Multipart { write, concurrency } => {
                write
                    .wait_for_capacity(*concurrency)
                    .await
                    .map_err(|e| classify(e, "upload", &self.key, &self.storage.location))?;
                write.put(data);
                Ok(())
            }
            Sink::Gcs { upload, chunk_size } => upload
                .write(&data, *chunk_size)
                .await
                .map_err(|e| self.storage.gcs_error(e, "upload", &self.key)),
        }
    }

    /// Uploads what is left and commits the object.
    ///
    /// # Errors
    /// The upload failed; it has been aborted.
    pub async fn finish(self) -> Result<()> {
        let Upload { sink, storage, key } = self;
        match sink {
            Sink::Multipart { write, .. } => write
                .finish()
                .await
                .map(drop)
                .map_err(|e| classify(e, "upload", &key, &storage.location)),
            Sink::Gcs { upload, .. } => upload
                .finish()
                .await
                .map_err(|e| storage.gcs_error(e, "upload", &key)),
        }
    }

    /// Abandons the upload and asks the store to drop the parts already sent.
    pub async fn abort(self) {
        match self.sink {
            Sink::Multipart { write, .. } => {
                if let Err(e) = write.abort().await {
                    tracing::warn!("cannot abort the upload of '{}': {e}", self.key);
                }
            }
            Sink::Gcs { upload, .. } => upload.abort().await,
        }
    }
}

/// Removes the staged files (`<name>#<digits>`) in `dir` and below that have not been
/// modified for `age`; returns their paths.
fn sweep_staged_files(dir: &std::path::Path, age: Duration) -> Vec<std::path::PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    // Names first, from the directory entry alone: a WAL directory holds hundreds of files
    // and this runs in archive_command.
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            removed.extend(sweep_staged_files(&path, age));
            continue;
        }
        let name = entry.file_name();
        let staged = name
            .to_str()
            .and_then(|n| n.rsplit_once('#'))
            .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if !staged {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|elapsed| elapsed >= age);
        if old && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// How often a download that breaks off mid-body is resumed from where it stopped.
const RESUMES: u32 = 5;

/// Reading whole trees: the catalog and base backups.
impl Storage {
    /// The "directories" directly inside `dir` (common prefixes of the keys below it).
    ///
    /// # Errors
    /// Storage errors, classified.
    pub async fn list_subdirs(&self, dir: &Path) -> Result<Vec<Path>> {
        self.list_level(dir).await.map(|(_, dirs)| dirs)
    }

    /// Streams an object's body as the store sends it, so a large object is never held
    /// whole. A body that breaks off is resumed from the last byte received, pinned to the
    /// same version by its ETag, up to five times; the stream ends only once every byte of
    /// the object has been delivered.
    ///
    /// # Errors
    /// [`Error::ObjectNotFound`] or other storage errors, from this call or from the stream.
    pub async fn stream(&self, key: &Path) -> Result<(u64, BoxStream<'static, Result<Bytes>>)> {
        if self.gcs.is_some() {
            return self.gcs_stream(key).await;
        }
        let first = self
            .store
            .get(key)
            .await
            .map_err(|e| classify(e, "download", key, &self.location))?;
        let size = first.meta.size;
        let state = Resume {
            storage: self.clone(),
            key: key.clone(),
            e_tag: first.meta.e_tag.clone(),
            received: 0,
            size,
            resumes_left: RESUMES,
            body: body_stream(first),
        };
        let stream = futures::stream::try_unfold(state, |mut st| async move {
            loop {
                match st.body.next().await {
                    Some(Ok(chunk)) => {
                        st.received += chunk.len() as u64;
                        return Ok(Some((chunk, st)));
                    }
                    None if st.received >= st.size => return Ok(None),
                    None => st.resume("the body ended early".into()).await?,
                    Some(Err(e)) => st.resume(one_line(&e)).await?,
                }
            }
        });
        // Around the resumptions: a stalled server is not worth asking again.
        Ok((size, self.speed_guarded(stream.boxed(), key)))
    }
}

/// The state of a resumable download.
struct Resume {
    storage: Storage,
    key: Path,
    e_tag: Option<String>,
    received: u64,
    size: u64,
    resumes_left: u32,
    body: BoxStream<'static, object_store::Result<Bytes>>,
}

impl Resume {
    async fn resume(&mut self, why: String) -> Result<()> {
        if self.resumes_left == 0 {
            return Err(Error::Storage {
                action: "download",
                key: self.key.to_string(),
                message: format!("{why} after {} of {} bytes", self.received, self.size),
            });
        }
        self.resumes_left -= 1;
        tracing::warn!(
            "download of '{}' broke off after {} of {} bytes ({why}); resuming",
            self.key,
            self.received,
            self.size
        );
        let options = GetOptions {
            range: Some(GetRange::Offset(self.received)),
            if_match: self.e_tag.clone(),
            ..GetOptions::default()
        };
        let s = &self.storage;
        let result = s
            .store
            .get_opts(&self.key, options)
            .await
            .map_err(|e| classify(e, "download", &self.key, &s.location))?;
        self.body = body_stream(result);
        Ok(())
    }
}

/// How much of a local file one blocking read hands on (the restore channel holds 32 of them).
const LOCAL_CHUNK: u64 = 256 << 10;

/// The body of a GET as a stream. object_store reads a local file 8 KiB per blocking task,
/// which made a 1 GB `file://` restore spend most of its time handing tasks between threads;
/// we read it [`LOCAL_CHUNK`] at a time instead.
fn body_stream(result: GetResult) -> BoxStream<'static, object_store::Result<Bytes>> {
    let (file, path) = match result.payload {
        GetResultPayload::File(file, path) => (Arc::new(file), Arc::new(path)),
        GetResultPayload::Stream(body) => return body,
    };
    futures::stream::try_unfold(result.range.start, move |offset| {
        let (file, path) = (file.clone(), path.clone());
        let want = result.range.end.saturating_sub(offset).min(LOCAL_CHUNK);
        async move {
            if want == 0 {
                return Ok(None);
            }
            tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; want as usize];
                std::os::unix::fs::FileExt::read_exact_at(&*file, &mut buf, offset)
                    .map(|()| Some((Bytes::from(buf), offset + want)))
                    .map_err(|e| object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: format!("cannot read {}: {e}", path.display()).into(),
                    })
            })
            .await
            .expect("file read task panicked")
        }
    })
    .boxed()
}

fn destination(location: &Location, options: &StorageOptions) -> String {
    let endpoint = match location.target {
        Target::S3 { .. } => s3_endpoint(options),
        Target::Azure { .. } => options
            .var("AZURE_STORAGE_CONNECTION_STRING")
            .and_then(|c| parse_connection_string(&c).blob_endpoint),
        Target::Gcs { .. } => options.var("STORAGE_EMULATOR_HOST"),
        Target::File { .. } => None,
    }
    .unwrap_or_default();
    format!("{} {endpoint}", location.url).replace(['\n', '\r'], " ")
}

/// The S3 endpoint override: `--endpoint-url`, else the AWS CLI's variables.
fn s3_endpoint(options: &StorageOptions) -> Option<String> {
    options
        .endpoint_url
        .clone()
        .or_else(|| options.var("AWS_ENDPOINT_URL_S3"))
        .or_else(|| options.var("AWS_ENDPOINT_URL"))
}

fn config(provider: &'static str) -> impl Fn(object_store::Error) -> Error {
    move |e| Error::Config {
        provider,
        message: e.to_string(),
    }
}

fn with_header(client: ClientOptions, name: &'static str, value: &str) -> Result<ClientOptions> {
    let value = object_store::HeaderValue::from_str(value).map_err(|_| {
        Error::Input(format!(
            "invalid value for header {name}: use printable ASCII"
        ))
    })?;
    let mut headers = object_store::HeaderMap::new();
    headers.insert(name, value);
    Ok(client.with_default_headers(headers))
}

fn client_options(options: &StorageOptions) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(true)
        .with_connect_timeout(Duration::from_secs(10))
        // A whole-request limit would cut off large uploads on slow links; the read timeout
        // (botocore's meaning of --read-timeout) catches a stalled server instead.
        .with_timeout_disabled()
        .with_read_timeout(read_timeout(options))
}

/// `--read-timeout`, or botocore's default.
fn read_timeout(options: &StorageOptions) -> Duration {
    options.read_timeout.unwrap_or(Duration::from_secs(60))
}

/// `AWS_CA_BUNDLE` or `REQUESTS_CA_BUNDLE`: extra roots for TLS, as Barman's SDKs read them.
fn ca_bundle(options: &StorageOptions) -> Option<String> {
    options
        .var("AWS_CA_BUNDLE")
        .or_else(|| options.var("REQUESTS_CA_BUNDLE"))
}

fn connector(options: &StorageOptions) -> http::LazyConnector {
    http::LazyConnector {
        ca_bundle: ca_bundle(options),
    }
}

/// How long a request may keep being retried, on every provider: botocore's legacy mode gives
/// up within about a minute, and so do we.
const RETRY_BUDGET: Duration = Duration::from_secs(60);

fn retry() -> RetryConfig {
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

fn s3_builder(bucket: &str, options: &StorageOptions) -> Result<AmazonS3Builder> {
    let env = |name: &str| options.var(name);
    let mut b = AmazonS3Builder::from_env();
    for (key, value) in &options.env {
        if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            b = b.with_config(key, value);
        }
    }
    let mut b = b.with_bucket_name(bucket).with_retry(retry());
    if env("AWS_REGION").is_none() && env("AWS_DEFAULT_REGION").is_none() {
        b = b.with_region("us-east-1");
    }
    let profile_name = options
        .aws_profile
        .clone()
        .or_else(|| env("AWS_PROFILE").filter(|_| env("AWS_ACCESS_KEY_ID").is_none()));
    if let Some(name) = profile_name {
        let profile = aws_profile::load(&name).ok_or_else(|| Error::Config {
            provider: "S3",
            message: format!("profile '{name}' not found in the AWS credentials or config file"),
        })?;
        if let (Some(id), Some(secret)) = (profile.access_key_id, profile.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(token) = profile.session_token {
                b = b.with_token(token);
            }
        }
        if let Some(region) = profile.region {
            b = b.with_region(region);
        }
    }
    let endpoint = s3_endpoint(options);
    let plain_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let virtual_style = match options.addressing_style {
        AddressingStyle::Virtual => true,
        AddressingStyle::Path => false,
        AddressingStyle::Auto => endpoint.is_none(),
    };
    if let Some(endpoint) = endpoint {
        let endpoint = if virtual_style {
            // object_store expects the bucket in a virtual-hosted endpoint.
            let mut url = url::Url::parse(&endpoint)
                .map_err(|e| Error::Input(format!("invalid --endpoint-url '{endpoint}': {e}")))?;
            let host = format!("{bucket}.{}", url.host_str().unwrap_or_default());
            url.set_host(Some(&host))
                .map_err(|e| Error::Input(format!("invalid --endpoint-url '{endpoint}': {e}")))?;
            url.to_string().trim_end_matches('/').to_string()
        } else {
            endpoint
        };
        b = b.with_endpoint(endpoint);
    }
    b = b.with_virtual_hosted_style_request(virtual_style);
    // As botocore does: over TLS the payload is not hashed into the signature (TLS already
    // protects it, and in a profile of a 16 MiB upload SHA-256 took 31% of our samples);
    // over plain HTTP it is.
    if env("AWS_UNSIGNED_PAYLOAD").is_none() {
        b = b.with_unsigned_payload(!plain_http);
    }
    if let Some(kind) = options.s3_encryption {
        let value = match kind {
            S3Encryption::Aes256 => "AES256",
            S3Encryption::AwsKms => "aws:kms",
        };
        b = b.with_config(s3_key("aws_server_side_encryption"), value);
    }
    if let Some(key) = &options.sse_kms_key_id {
        if options.s3_encryption != Some(S3Encryption::AwsKms) {
            return Err(Error::Input(
                "Encryption type must be \"aws:kms\" if SSE KMS Key ID is specified: add -e aws:kms".into(),
            ));
        }
        b = b.with_config(s3_key("aws_sse_kms_key_id"), key);
    }
    Ok(b)
}

fn s3_key(name: &str) -> AmazonS3ConfigKey {
    name.parse()
        .expect("object_store knows its own S3 configuration key names")
}

/// The fields of an Azure connection string that we use.
#[derive(Default)]
struct ConnectionString {
    account_name: Option<String>,
    account_key: Option<String>,
    sas: Option<String>,
    blob_endpoint: Option<String>,
}

fn parse_connection_string(s: &str) -> ConnectionString {
    let mut c = ConnectionString::default();
    for part in s.split(';') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        let v = Some(v.trim().to_string());
        match k.trim() {
            "AccountName" => c.account_name = v,
            "AccountKey" => c.account_key = v,
            "SharedAccessSignature" => c.sas = v,
            "BlobEndpoint" => c.blob_endpoint = v,
            _ => {}
        }
    }
    c
}

fn sas_pairs(sas: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(sas.trim_start_matches('?').as_bytes())
        .into_owned()
        .collect()
}

fn azure_builder(
    account: &str,
    container: &str,
    emulator_endpoint: Option<&str>,
    options: &StorageOptions,
) -> Result<MicrosoftAzureBuilder> {
    let env = |name: &str| options.var(name);
    let base = MicrosoftAzureBuilder::new()
        .with_container_name(container)
        .with_retry(retry());
    let connection = env("AZURE_STORAGE_CONNECTION_STRING").map(|s| parse_connection_string(&s));
    if let Some(endpoint) = emulator_endpoint {
        // Barman insists on a connection string for emulated storage; so do we.
        let c = connection.ok_or_else(|| Error::Config {
            provider: "Azure",
            message: "A connection string must be provided when using emulated storage: set AZURE_STORAGE_CONNECTION_STRING".into(),
        })?;
        let mut b = base
            .with_account(c.account_name.unwrap_or_else(|| account.to_string()))
            .with_endpoint(c.blob_endpoint.unwrap_or_else(|| endpoint.to_string()));
        if let Some(key) = c.account_key {
            b = b.with_access_key(key);
        } else if let Some(sas) = c.sas {
            b = b.with_sas_authorization(sas_pairs(&sas));
        }
        return Ok(b);
    }
    let mut b = base.with_account(account);
    if let Some(credential) = options.azure_credential {
        let kind = match credential {
            AzureCredential::AzureCli => "azure_cli",
            AzureCredential::ManagedIdentity => "managed_identity",
            AzureCredential::Default => "auto",
        };
        return Ok(from_azure_env(b, options).with_credential_type(kind));
    }
    if let Some(c) = connection {
        if let Some(endpoint) = c.blob_endpoint {
            b = b.with_endpoint(endpoint);
        }
        if let Some(key) = c.account_key {
            return Ok(b.with_access_key(key));
        }
        if let Some(sas) = c.sas {
            return Ok(b.with_sas_authorization(sas_pairs(&sas)));
        }
    }
    if let Some(sas) = env("AZURE_STORAGE_SAS_TOKEN") {
        return Ok(b.with_sas_authorization(sas_pairs(&sas)));
    }
    if let Some(key) = env("AZURE_STORAGE_KEY") {
        return Ok(b.with_access_key(key));
    }
    Ok(from_azure_env(b, options))
}

/// The default chain's inputs: service principal, workload identity.
fn from_azure_env(mut b: MicrosoftAzureBuilder, options: &StorageOptions) -> MicrosoftAzureBuilder {
    for (var, key) in [
        ("AZURE_CLIENT_ID", "azure_client_id"),
        ("AZURE_TENANT_ID", "azure_tenant_id"),
        ("AZURE_CLIENT_SECRET", "azure_client_secret"),
        ("AZURE_FEDERATED_TOKEN_FILE", "azure_federated_token_file"),
        ("AZURE_AUTHORITY_HOST", "azure_authority_host"),
    ] {
        if let (Some(value), Ok(key)) = (options.var(var), key.parse()) {
            b = b.with_config(key, value);
        }
    }
    b
}

/// Where GCS's JSON API answers: the emulator when `STORAGE_EMULATOR_HOST` is set.
fn gcs_base_url(options: &StorageOptions) -> String {
    match options.var("STORAGE_EMULATOR_HOST") {
        Some(host) if host.contains("://") => host,
        Some(host) => format!("http://{host}"),
        None => "https://storage.googleapis.com".into(),
    }
}

fn gcs_builder(bucket: &str, options: &StorageOptions) -> GoogleCloudStorageBuilder {
    let env = |name: &str| options.var(name);
    let b = GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_retry(retry());
    if env("STORAGE_EMULATOR_HOST").is_some() {
        // The emulator takes anonymous requests, as google-cloud-storage sends them there.
        return b
            .with_base_url(gcs_base_url(options).trim_end_matches('/'))
            .with_credentials(Arc::new(StaticCredentialProvider::new(GcpCredential {
                bearer: String::new(),
            })));
    }
    match env("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(path) => b.with_application_credentials(path),
        None => b,
    }
}

/// Gives an `object_store` error its meaning.
fn classify(
    e: object_store::Error,
    action: &'static str,
    key: &Path,
    location: &Location,
) -> Error {
    if let object_store::Error::NotFound { .. } = e {
        if !bucket_missing(&e) {
            return Error::ObjectNotFound {
                key: key.to_string(),
            };
        }
    }
    let text = e.to_string();
    if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || text.contains("403 Forbidden")
        || text.contains("401 Unauthorized")
    {
        return Error::AccessDenied {
            action,
            key: key.to_string(),
        };
    }
    if bucket_missing(&e) {
        return Error::BucketNotFound {
            bucket: location.bucket(),
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            if matches!(http.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout) {
                return Error::Connection {
                    message: format!("{} ({})", location.url_for_messages(), one_line(&e)),
                };
            }
        }
        source = err.source();
    }
    Error::Storage {
        action,
        key: key.to_string(),
        message: one_line(&e),
    }
}

fn bucket_missing(e: &object_store::Error) -> bool {
    let text = format!("{e:?}");
    [
        "NoSuchBucket",
        "ContainerNotFound",
        "The specified bucket does not exist",
    ]
    .iter()
    .any(|marker| text.contains(marker))
}

/// The innermost meaningful message of an error chain, on one line, with any server error
/// body cut down to its code and message.
fn one_line(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    without_error_body(&parts.join(": ")).replace(['\n', '\r'], " ")
}

/// `text` with an XML error body (S3's and Azure's `<Error>`) replaced by its `Code` and
/// `Message`: a body can quote the request, credentials included, and is no message for a
/// DBA anyway.
fn without_error_body(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error")) else {
        return text.to_string();
    };
    let body = &text[start..];
    let element = |name: &str| {
        let open = format!("<{name}>");
        let from = body.find(&open)? + open.len();
        let to = body[from..].find(&format!("</{name}>"))?;
        Some(body[from..from + to].trim().to_string())
    };
    let summary = match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        (None, Some(message)) => message,
        (None, None) => "(error body not shown)".to_string(),
    };
    format!("{}{summary}", &text[..start])
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

impl Location {
    /// The URL without any query string (a SAS token would live there).
    pub fn url_for_messages(&self) -> String {
        self.url.split('?').next().unwrap_or_default().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_fields() {
        let c = parse_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;",
        );
        assert_eq!(c.account_name.as_deref(), Some("devstoreaccount1"));
        assert_eq!(c.account_key.as_deref(), Some("a2V5"));
        assert_eq!(
            c.blob_endpoint.as_deref(),
            Some("http://127.0.0.1:1/devstoreaccount1")
        );
    }

    /// An in-memory store whose first download of each object breaks off after `cut` bytes.
    #[derive(Debug)]
    struct Flaky {
        inner: object_store::memory::InMemory,
        cut: usize,
        broken: std::sync::Mutex<std::collections::HashSet<Path>>,
    }

    impl std::fmt::Display for Flaky {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Flaky")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Flaky {
        async fn put_opts(
            &self,
            location: &Path,
            payload: object_store::PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<object_store::PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Path,
            opts: object_store::PutMultipartOptions,
        ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Path,
            options: GetOptions,
        ) -> object_store::Result<object_store::GetResult> {
            let first =
                options.range.is_none() && self.broken.lock().unwrap().insert(location.clone());
            let result = self.inner.get_opts(location, options).await?;
            if first {
                let cut = self.cut;
                let head = result.bytes().await?.slice(..cut);
                let failing = futures::stream::iter([
                    Ok(head),
                    Err(object_store::Error::Generic {
                        store: "Flaky",
                        source: "connection reset".into(),
                    }),
                ]);
                let meta = self.inner.head(location).await?;
                return Ok(object_store::GetResult {
                    payload: object_store::GetResultPayload::Stream(failing.boxed()),
                    range: 0..meta.size,
                    meta,
                    attributes: Attributes::new(),
                    extensions: Default::default(),
                });
            }
            Ok(result)
        }

        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(locations)
        }

        fn list(
            &self,
            prefix: Option<&Path>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Path>,
        ) -> object_store::Result<object_store::ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }

        async fn copy_opts(
            &self,
            from: &Path,
            to: &Path,
            options: object_store::CopyOptions,
        ) -> object_store::Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn only_stale_staged_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("base/20261126T000000");
        std::fs::create_dir_all(&nested).unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        let mut stale = Vec::new();
        for (path, old) in [
            (nested.join("data.tar#1"), true),
            (dir.path().join("000000010000000000000001#17"), true),
            (dir.path().join("000000010000000000000002#3"), false),
            (dir.path().join("000000010000000000000003"), true),
            (dir.path().join("notes#draft"), true),
        ] {
            let file = std::fs::File::create(&path).unwrap();
            if old {
                file.set_modified(hour_ago).unwrap();
            }
            if old && path.to_string_lossy().contains("tar#1")
                || path.to_string_lossy().ends_with("#17")
            {
                stale.push(path);
            }
        }
        let mut removed = sweep_staged_files(dir.path(), Duration::from_secs(15 * 60));
        removed.sort();
        stale.sort();
        assert_eq!(removed, stale);
        for kept in [
            "000000010000000000000002#3",
            "000000010000000000000003",
            "notes#draft",
        ] {
            assert!(dir.path().join(kept).exists(), "{kept} was removed");
        }
    }

    #[tokio::test]
    async fn a_broken_download_resumes_where_it_stopped() {
        let flaky = Arc::new(Flaky {
            inner: object_store::memory::InMemory::new(),
            cut: 1000,
            broken: Default::default(),
        });
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let key = Path::from("pg/base/20261125T035049/data.tar");
        flaky.put(&key, data.clone().into()).await.unwrap();
        let storage = Storage {
            store: flaky.clone(),
            writer: flaky,
            gcs: None,
            location: Location::parse("file:///nonexistent", Provider::AwsS3).unwrap(),
            destination: String::new(),
            read_timeout: Duration::from_secs(60),
        };
        let (size, stream) = storage.stream(&key).await.unwrap();
        assert_eq!(size, 100_000);
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert!(chunks.len() >= 2, "the download never broke off");
        assert_eq!(chunks.concat(), data);
    }

    #[tokio::test]
    async fn local_files_stream_whole_and_from_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let len = 3 * LOCAL_CHUNK as usize + 12_345;
        let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
        std::fs::write(dir.path().join("obj"), &data).unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let key = Path::from("obj");
        let collect = |result: GetResult| async {
            let chunks: Vec<Bytes> = body_stream(result).try_collect().await.unwrap();
            assert!(chunks.iter().all(|c| c.len() as u64 <= LOCAL_CHUNK));
            chunks.concat()
        };
        assert_eq!(collect(store.get(&key).await.unwrap()).await, data);
        let options = GetOptions {
            range: Some(GetRange::Offset(LOCAL_CHUNK + 7)),
            ..GetOptions::default()
        };
        let tail = collect(store.get_opts(&key, options).await.unwrap()).await;
        assert_eq!(tail, data[LOCAL_CHUNK as usize + 7..]);
    }

    #[test]
    fn sas_tokens_split_into_pairs() {
        let pairs = sas_pairs("?sv=2020&sig=a%2Bb");
        assert_eq!(
            pairs,
            vec![("sv".into(), "2020".into()), ("sig".into(), "a+b".into())]
        );
    }
}
