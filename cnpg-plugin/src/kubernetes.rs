//! The Kubernetes API as the instance sidecar uses it: GET of ObjectStores and Secrets in the
//! Cluster's namespace (cached 10 s, as the plugin's client), and PUT of an ObjectStore's
//! status with its `resourceVersion`, re-read and retried on a 409 conflict.
//!
//! The client is made on first use from a kubeconfig (`KUBECONFIG`, for tests and runs by
//! hand) or the Pod's in-cluster ServiceAccount, so the sidecar answers the CNPG-I handshake
//! and the startup probe even before the API is reachable.
//!
//! The retention loop's calls are here too: GET of the Cluster (uncached), LIST and DELETE
//! of Backups, POST of Events.
//!
//! Requests are plain GETs and PUTs of named objects because that is all the Role the
//! plugin's operator generates allows: `get` of the named Secrets and ObjectStores, and only
//! `update` of `objectstores/status` (so a PUT, never a PATCH). ObjectStores are read as
//! JSON into [`ObjectStore`], which keeps every field it does not know, so a status PUT
//! writes back what a newer operator put in the object.
//!
//! Secret values are held in the cache and returned to the caller, never put in an error or
//! in this type's `Debug` output.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, GetParams, ListParams, PostParams, Request};
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};

use crate::objectstore::{self, ObjectStore, RecoveryWindow, SecretKeySelector};

/// How long a read Secret or ObjectStore is served from the cache (the plugin's
/// `DefaultTTLSeconds`).
pub const CACHE_TTL: Duration = Duration::from_secs(10);

/// How many times a status PUT is tried when the API answers 409, and the pauses between the
/// tries: client-go's `retry.DefaultBackoff` (4 steps from 10 ms, factor 5), which the plugin
/// uses for the same write.
const STATUS_BACKOFF: [Duration; 3] = [
    Duration::from_millis(10),
    Duration::from_millis(50),
    Duration::from_millis(250),
];

/// The kind names used in messages.
const OBJECT_STORE: &str = "ObjectStore";
const SECRET: &str = "Secret";
const CLUSTER: &str = "Cluster";
const BACKUP: &str = "Backup";
const EVENT: &str = "Event";
/// The "name" of a list in messages.
const ALL: &str = "*";

/// Why a Kubernetes call failed, or (for [`crate::credentials`]) why a store's credentials
/// cannot be turned into an environment. Each message is one line naming the object and
/// what to check; none carries a Secret's value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither `KUBECONFIG` nor the in-cluster ServiceAccount gave a usable client.
    #[error(
        "make the Kubernetes client: {reason}; the sidecar reads KUBECONFIG, else the Pod's \
         ServiceAccount token and KUBERNETES_SERVICE_HOST (in-cluster config)"
    )]
    Config {
        /// What kube said.
        reason: String,
    },
    /// 404.
    #[error(
        "{kind} {namespace}/{name} not found; check the name in the Cluster's plugin \
         parameters or the ObjectStore, and that it exists in namespace {namespace}"
    )]
    NotFound {
        /// `ObjectStore`, `Secret`, ….
        kind: &'static str,
        /// The Cluster's namespace.
        namespace: String,
        /// The object's name.
        name: String,
    },
    /// 403: the sidecar's ServiceAccount may not make this call.
    #[error(
        "{verb} {kind} {namespace}/{name}: forbidden; the plugin's operator may not have \
         reconciled the Role yet (it grants the Cluster's ServiceAccount access to the \
         Secrets and ObjectStores its stores name): {message}"
    )]
    Forbidden {
        /// `get`, `update`, ….
        verb: &'static str,
        /// The kind.
        kind: &'static str,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// The API's message.
        message: String,
    },
    /// The Secret exists but has no such key in `data`.
    #[error(
        "Secret {namespace}/{name} has no key {key:?}; add the key to the Secret or fix the \
         key the ObjectStore names"
    )]
    MissingKey {
        /// The namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key asked for.
        key: String,
    },
    /// A key used as an environment value is not UTF-8.
    #[error(
        "Secret {namespace}/{name} key {key:?} is not UTF-8 text; the barman-cloud commands \
         get it as an environment variable, store it as text"
    )]
    NotText {
        /// The namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The key.
        key: String,
    },
    /// The answer was not the object expected.
    #[error("decode {kind} {namespace}/{name}: {reason}; check the CRD and the object")]
    Decode {
        /// The kind.
        kind: &'static str,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// What did not fit (for a Secret only the position: the text may hold values).
        reason: String,
    },
    /// The status PUT kept meeting newer versions of the object.
    #[error(
        "update status of ObjectStore {namespace}/{name}: still conflicting after {attempts} \
         attempts; something else keeps changing the object, the next call tries again"
    )]
    Conflict {
        /// The namespace.
        namespace: String,
        /// The store.
        name: String,
        /// How many PUTs were made.
        attempts: usize,
    },
    /// Any other answer, or no answer.
    #[error(
        "{verb} {kind} {namespace}/{name}: {reason}; check the API server is reachable from \
         the Pod"
    )]
    Request {
        /// The verb.
        verb: &'static str,
        /// The kind.
        kind: &'static str,
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// The status code and message, or the transport error.
        reason: String,
    },
    /// The store's configuration cannot give credentials.
    #[error("ObjectStore {namespace}/{store}: {problem}")]
    Credentials {
        /// The namespace.
        namespace: String,
        /// The store.
        store: String,
        /// What is wrong and what to set.
        problem: &'static str,
    },
    /// The GCS key file could not be written or removed.
    #[error(
        "write the Google credentials file {path}: {source}; check the controller volume \
         is writable"
    )]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl Error {
    /// True when the API refused the call (403): the plugin's operator may not have
    /// reconciled the Role for a new Secret or store yet.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Forbidden { .. })
    }

    /// The gRPC code of a call that failed on this. A Forbidden read is the plugin's
    /// FAILED_PRECONDITION (the Role is reconciled later), and so is a configuration to fix
    /// (a missing store, Secret or key, an object that does not decode, a store without
    /// credentials); an API that did not answer is a retry that may succeed. Never NOT_FOUND:
    /// for a WAL Restore that code means the WAL is not in the archive.
    pub fn code(&self) -> tonic::Code {
        match self {
            Error::Request { .. } | Error::Conflict { .. } | Error::Config { .. } => {
                tonic::Code::Unavailable
            }
            Error::WriteFile { .. } => tonic::Code::Internal,
            _ => tonic::Code::FailedPrecondition,
        }
    }

    /// True when the object does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// A cached value and when it was read.
struct Cached<T> {
    read_at: Instant,
    value: T,
}

/// A Secret's `data`, decoded.
type SecretData = Arc<BTreeMap<String, Vec<u8>>>;

/// The sidecar's Kubernetes client, scoped to the Cluster's namespace.
pub struct Kubernetes {
    namespace: String,
    ttl: Duration,
    /// Given by the caller (tests); `None`: inferred on first use.
    config: Option<kube::Config>,
    client: OnceCell<kube::Client>,
    // One lock per kind, held across the GET as the plugin's client does: concurrent reads of
    // the same object make one request.
    object_stores: Mutex<HashMap<String, Cached<ObjectStore>>>,
    secrets: Mutex<HashMap<String, Cached<SecretData>>>,
}

impl fmt::Debug for Kubernetes {
    // The cache holds Secret values: only the settings are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kubernetes")
            .field("namespace", &self.namespace)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Kubernetes {
    /// A client for `namespace`; nothing is contacted yet. The connection settings are
    /// inferred on first use (`KUBECONFIG`, else in-cluster).
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            ttl: CACHE_TTL,
            config: None,
            client: OnceCell::new(),
            object_stores: Mutex::default(),
            secrets: Mutex::default(),
        }
    }

    /// A client for `namespace` with the given connection settings (tests, tools).
    pub fn with_config(namespace: &str, config: kube::Config) -> Self {
        Self {
            config: Some(config),
            ..Self::new(namespace)
        }
    }

    /// The same client with another cache lifetime (tests; zero disables the cache).
    pub fn with_ttl(self, ttl: Duration) -> Self {
        Self { ttl, ..self }
    }

    /// The namespace every object is read from.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The ObjectStore `name` (from the 10 s cache when read recently).
    ///
    /// # Errors
    /// When it does not exist, cannot be read, or is not an ObjectStore.
    pub async fn object_store(&self, name: &str) -> Result<ObjectStore, Error> {
        let mut cache = self.object_stores.lock().await;
        if let Some(cached) = cache.get(name)
            && cached.read_at.elapsed() <= self.ttl
        {
            return Ok(cached.value.clone());
        }
        let store = self.read_object_store(name).await?;
        cache.insert(
            name.to_owned(),
            Cached {
                read_at: Instant::now(),
                value: store.clone(),
            },
        );
        Ok(store)
    }

    /// The value of one key of a Secret (from the 10 s cache when read recently).
    ///
    /// # Errors
    /// When the Secret does not exist, cannot be read, or has no such key.
    pub async fn secret_value(&self, selector: &SecretKeySelector) -> Result<Vec<u8>, Error> {
        let data = self.secret_data(&selector.name).await?;
        data.get(&selector.key)
            .cloned()
            .ok_or_else(|| Error::MissingKey {
                namespace: self.namespace.clone(),
                name: selector.name.clone(),
                key: selector.key.clone(),
            })
    }

    /// Applies `change` to `status.serverRecoveryWindow[server]` of the ObjectStore `store`
    /// and PUTs the status with the object's `resourceVersion`; on a 409 the object is read
    /// again and `change` applied again, up to 4 PUTs in all (10, 50, 250 ms apart). The
    /// reads bypass the cache: a cached copy would carry a stale `resourceVersion`.
    ///
    /// # Errors
    /// When the store cannot be read, the PUT is refused, or it still conflicts after the
    /// last try ([`Error::Conflict`]).
    pub async fn update_recovery_window(
        &self,
        store: &str,
        server: &str,
        change: impl Fn(&mut RecoveryWindow) + Send + Sync,
    ) -> Result<(), Error> {
        let attempts = STATUS_BACKOFF.len() + 1;
        for attempt in 0..attempts {
            let mut object = self.read_object_store(store).await?;
            change(
                object
                    .status
                    .get_or_insert_with(Default::default)
                    .server_recovery_window
                    .entry(server.to_owned())
                    .or_default(),
            );
            match self.put_status(store, &object).await {
                Ok(()) => {
                    // Readers of the cache see the new status from now on.
                    self.object_stores.lock().await.remove(store);
                    return Ok(());
                }
                Err(PutError::Conflict) => match STATUS_BACKOFF.get(attempt) {
                    Some(pause) => tokio::time::sleep(*pause).await,
                    None => break,
                },
                Err(PutError::Other(error)) => return Err(error),
            }
        }
        Err(Error::Conflict {
            namespace: self.namespace.clone(),
            name: store.to_owned(),
            attempts,
        })
    }

    /// The CloudNativePG Cluster `name` (`api_version`: `postgresql.cnpg.io/v1`, or the
    /// `CUSTOM_CNPG_GROUP`/`VERSION` pair), uncached as in the plugin's retention loop.
    ///
    /// # Errors
    /// When it does not exist, cannot be read, or is not JSON.
    pub async fn cluster(&self, api_version: &str, name: &str) -> Result<Value, Error> {
        let path = self.collection_path(api_version, "clusters");
        let text = self.get(CLUSTER, path, name).await?;
        self.json(CLUSTER, name, &text)
    }

    /// Every Backup in the namespace (`api_version` as for [`Kubernetes::cluster`]); the
    /// caller picks the ones of its Cluster.
    ///
    /// # Errors
    /// When the list cannot be read or is not a list.
    pub async fn backups(&self, api_version: &str) -> Result<Vec<Value>, Error> {
        let request = Request::new(self.collection_path(api_version, "backups"))
            .list(&ListParams::default())
            .map_err(|error| self.request_error("list", BACKUP, ALL, error.to_string()))?;
        let text = self
            .client()
            .await?
            .request_text(request)
            .await
            .map_err(|error| self.classify("list", BACKUP, ALL, error))?;
        match self.json(BACKUP, ALL, &text)? {
            Value::Object(mut list) => match list.remove("items") {
                Some(Value::Array(items)) => Ok(items),
                Some(Value::Null) | None => Ok(Vec::new()),
                Some(_) => Err(self.decode_error(BACKUP, ALL, "items is not a list".into())),
            },
            _ => Err(self.decode_error(BACKUP, ALL, "not a list object".into())),
        }
    }

    /// Deletes the Backup `name`.
    ///
    /// # Errors
    /// When it does not exist ([`Error::is_not_found`]) or the API refuses.
    pub async fn delete_backup(&self, api_version: &str, name: &str) -> Result<(), Error> {
        let request = Request::new(self.collection_path(api_version, "backups"))
            .delete(name, &DeleteParams::default())
            .map_err(|error| self.request_error("delete", BACKUP, name, error.to_string()))?;
        self.client()
            .await?
            .request_text(request)
            .await
            .map(drop)
            .map_err(|error| self.classify("delete", BACKUP, name, error))
    }

    /// Creates `event` (a core `v1` Event, with `metadata.name` or `generateName`) in the
    /// namespace.
    ///
    /// # Errors
    /// When the API refuses it.
    pub async fn create_event(&self, event: &Value) -> Result<(), Error> {
        let name = event["metadata"]["name"]
            .as_str()
            .or_else(|| event["metadata"]["generateName"].as_str())
            .unwrap_or_default()
            .to_owned();
        let body = serde_json::to_vec(event)
            .map_err(|error| self.request_error("create", EVENT, &name, error.to_string()))?;
        let request = Request::new(self.collection_path("v1", "events"))
            .create(&PostParams::default(), body)
            .map_err(|error| self.request_error("create", EVENT, &name, error.to_string()))?;
        self.client()
            .await?
            .request_text(request)
            .await
            .map(drop)
            .map_err(|error| self.classify("create", EVENT, &name, error))
    }

    /// `/api/v1/namespaces/NS/PLURAL` or `/apis/GROUP/VERSION/namespaces/NS/PLURAL`.
    fn collection_path(&self, api_version: &str, plural: &str) -> String {
        let root = if api_version.contains('/') {
            "apis"
        } else {
            "api"
        };
        format!(
            "/{root}/{api_version}/namespaces/{}/{plural}",
            self.namespace
        )
    }

    fn json(&self, kind: &'static str, name: &str, text: &str) -> Result<Value, Error> {
        serde_json::from_str(text)
            .map_err(|error| self.decode_error(kind, name, one_line(&error.to_string())))
    }

    fn decode_error(&self, kind: &'static str, name: &str, reason: String) -> Error {
        Error::Decode {
            kind,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            reason,
        }
    }

    /// The client, made on first use. A failure is not kept: the next call tries again.
    async fn client(&self) -> Result<&kube::Client, Error> {
        self.client
            .get_or_try_init(|| async {
                // Fails only when a provider is installed already: that one is used.
                let _ = rustls::crypto::ring::default_provider().install_default();
                let config = match &self.config {
                    Some(config) => config.clone(),
                    None => kube::Config::infer().await.map_err(|error| Error::Config {
                        reason: one_line(&error.to_string()),
                    })?,
                };
                kube::Client::try_from(config).map_err(|error| Error::Config {
                    reason: one_line(&error.to_string()),
                })
            })
            .await
    }

    fn object_store_path(&self) -> String {
        format!(
            "/apis/{}/{}/namespaces/{}/{}",
            objectstore::GROUP,
            objectstore::VERSION,
            self.namespace,
            objectstore::PLURAL
        )
    }

    /// GET of one named object, as text.
    async fn get(&self, kind: &'static str, path: String, name: &str) -> Result<String, Error> {
        let failed = |reason: String| self.request_error("get", kind, name, reason);
        let request = Request::new(path)
            .get(name, &GetParams::default())
            .map_err(|error| failed(error.to_string()))?;
        let client = self.client().await?;
        client
            .request_text(request)
            .await
            .map_err(|error| self.classify("get", kind, name, error))
    }

    /// An uncached GET of an ObjectStore.
    async fn read_object_store(&self, name: &str) -> Result<ObjectStore, Error> {
        let text = self
            .get(OBJECT_STORE, self.object_store_path(), name)
            .await?;
        serde_json::from_str(&text).map_err(|error| Error::Decode {
            kind: OBJECT_STORE,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            reason: one_line(&error.to_string()),
        })
    }

    /// The decoded `data` of the Secret `name`, cached.
    async fn secret_data(&self, name: &str) -> Result<SecretData, Error> {
        let mut cache = self.secrets.lock().await;
        if let Some(cached) = cache.get(name)
            && cached.read_at.elapsed() <= self.ttl
        {
            return Ok(Arc::clone(&cached.value));
        }
        let path = format!("/api/v1/namespaces/{}/secrets", self.namespace);
        let text = self.get(SECRET, path, name).await?;
        let secret: Secret = serde_json::from_str(&text).map_err(|error| Error::Decode {
            kind: SECRET,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            // serde's message may quote the offending value: only the position is kept.
            reason: format!(
                "not a Secret (invalid JSON at line {} column {})",
                error.line(),
                error.column()
            ),
        })?;
        let data: SecretData = Arc::new(
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, value.0))
                .collect(),
        );
        cache.insert(
            name.to_owned(),
            Cached {
                read_at: Instant::now(),
                value: Arc::clone(&data),
            },
        );
        Ok(data)
    }

    /// PUT of `objectstores/NAME/status` with the whole object (its `resourceVersion` is the
    /// optimistic lock).
    async fn put_status(&self, name: &str, object: &ObjectStore) -> Result<(), PutError> {
        let failed = |reason: String| {
            PutError::Other(self.request_error("update", OBJECT_STORE, name, reason))
        };
        let body = serde_json::to_vec(object).map_err(|error| failed(error.to_string()))?;
        let request = Request::new(self.object_store_path())
            .replace_subresource("status", name, &PostParams::default(), body)
            .map_err(|error| failed(error.to_string()))?;
        let client = self.client().await.map_err(PutError::Other)?;
        match client.request_text(request).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Err(PutError::Conflict),
            Err(error) => Err(PutError::Other(self.classify(
                "update",
                OBJECT_STORE,
                name,
                error,
            ))),
        }
    }

    /// A kube error as one of ours.
    fn classify(
        &self,
        verb: &'static str,
        kind: &'static str,
        name: &str,
        error: kube::Error,
    ) -> Error {
        match error {
            kube::Error::Api(status) if status.code == 404 => Error::NotFound {
                kind,
                namespace: self.namespace.clone(),
                name: name.to_owned(),
            },
            kube::Error::Api(status) if status.code == 403 => Error::Forbidden {
                verb,
                kind,
                namespace: self.namespace.clone(),
                name: name.to_owned(),
                message: one_line(&status.message),
            },
            kube::Error::Api(status) => self.request_error(
                verb,
                kind,
                name,
                format!(
                    "the API answered {} {}: {}",
                    status.code,
                    status.reason,
                    one_line(&status.message)
                ),
            ),
            other => self.request_error(verb, kind, name, one_line(&other.to_string())),
        }
    }

    fn request_error(
        &self,
        verb: &'static str,
        kind: &'static str,
        name: &str,
        reason: String,
    ) -> Error {
        Error::Request {
            verb,
            kind,
            namespace: self.namespace.clone(),
            name: name.to_owned(),
            reason,
        }
    }
}

/// How a status PUT ended when it did not succeed.
enum PutError {
    /// 409: the object changed since it was read.
    Conflict,
    /// Anything else.
    Other(Error),
}

/// `text` with line breaks replaced, so every message stays one log line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        assert_eq!(one_line("a\nb  c\r\n"), "a b c");
    }

    #[test]
    fn debug_shows_no_cache() {
        let kubernetes = Kubernetes::new("default");
        let shown = format!("{kubernetes:?}");
        assert!(
            shown.starts_with("Kubernetes { namespace: \"default\""),
            "{shown}"
        );
        assert!(!shown.contains("secrets"), "{shown}");
    }

    #[test]
    fn only_403_is_forbidden() {
        let forbidden = Error::Forbidden {
            verb: "get",
            kind: SECRET,
            namespace: "ns".into(),
            name: "s".into(),
            message: String::new(),
        };
        assert!(forbidden.is_forbidden());
        let missing = Error::NotFound {
            kind: SECRET,
            namespace: "ns".into(),
            name: "s".into(),
        };
        assert!(!missing.is_forbidden());
        assert!(missing.is_not_found());
    }
}
