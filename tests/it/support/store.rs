//! One bucket per test on each provider: file, S3 (moto), Azure (Azurite), GCS emulator;
//! and what tests do with it besides running our tools: the library's client on it (to list
//! and read what a tool stored), and the `archive_command` and `restore_command` lines that
//! point PostgreSQL at it.

use std::ffi::OsStr;
use std::future::Future;
use std::path::PathBuf;
use std::process::Command;

use barman_cloud::storage::{self, Location, Storage, StorageOptions};
use object_store::path::Path;

use super::command::TestCommand;

/// The stores a test matrix runs over: the library's three cloud providers, plus `file://`
/// (which the library reaches under its default provider, so it has no variant there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    File,
    S3,
    Azure,
    Gcs,
}

/// A fresh, empty destination and how to reach it.
pub struct Store {
    /// The destination URL (with a key prefix).
    pub url: String,
    /// Flags our tools and Barman's need for it.
    pub args: Vec<String>,
    /// Environment variables our tools and Barman's need for it.
    pub env: Vec<(String, String)>,
    /// What `--cloud-provider` in `args` says, typed for the library.
    pub cloud_provider: storage::Provider,
    /// What `--endpoint-url` in `args` says (S3 only).
    pub endpoint_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Store {
    /// Creates a new bucket on `provider`, or `None` when the service is not running and
    /// services are not required.
    pub fn new(provider: Provider) -> Option<Store> {
        let bucket = unique("bcrs");
        Some(match provider {
            Provider::File => {
                let dir = super::temp_dir();
                Store {
                    url: format!("file://{}/store", dir.path().display()),
                    args: vec![],
                    env: vec![],
                    cloud_provider: storage::Provider::AwsS3,
                    endpoint_url: None,
                    _dir: Some(dir),
                }
                .with_root()
            }
            Provider::S3 => {
                let endpoint = super::required("BCRS_S3_ENDPOINT")?;
                Command::new("curl")
                    .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
                    .ok();
                Store {
                    url: format!("s3://{bucket}/prefix"),
                    args: vec!["--endpoint-url".into(), endpoint.clone()],
                    env: vec![
                        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
                        ("AWS_SECRET_ACCESS_KEY".into(), "testing-secret".into()),
                        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
                    ],
                    cloud_provider: storage::Provider::AwsS3,
                    endpoint_url: Some(endpoint),
                    _dir: None,
                }
            }
            Provider::Azure => {
                let endpoint = super::required("BCRS_AZURE_ENDPOINT")?;
                let conn = super::required("BCRS_AZURE_CONNECTION_STRING")?;
                let python = format!("{}/python", super::required("BCRS_BARMAN_BIN")?);
                let script = "import os, sys; from azure.storage.blob import BlobServiceClient as C; \
                              C.from_connection_string(os.environ['BCRS_AZURE_CONNECTION_STRING'])\
                              .create_container(sys.argv[1])";
                // The connection string holds the account key: not on a failure's command line.
                let mut create = Command::new(python);
                create
                    .args(["-c", script, &bucket])
                    .env("BCRS_AZURE_CONNECTION_STRING", &conn);
                create.ok();
                Store {
                    url: format!("{endpoint}/{bucket}/prefix"),
                    args: vec!["--cloud-provider".into(), "azure-blob-storage".into()],
                    env: vec![("AZURE_STORAGE_CONNECTION_STRING".into(), conn)],
                    cloud_provider: storage::Provider::AzureBlobStorage,
                    endpoint_url: None,
                    _dir: None,
                }
            }
            Provider::Gcs => {
                let endpoint = super::required("BCRS_GCS_ENDPOINT")?;
                let body = format!("{{\"name\": \"{bucket}\"}}");
                let url = format!("{endpoint}/storage/v1/b?project=test");
                Command::new("curl")
                    .args(["-sf", "-o", "/dev/null", "-X", "POST"])
                    .args(["-H", "Content-Type: application/json", "-d", &body, &url])
                    .ok();
                Store {
                    url: format!("gs://{bucket}/prefix"),
                    args: vec!["--cloud-provider".into(), "google-cloud-storage".into()],
                    env: vec![("STORAGE_EMULATOR_HOST".into(), endpoint)],
                    cloud_provider: storage::Provider::GoogleCloudStorage,
                    endpoint_url: None,
                    _dir: None,
                }
            }
        })
    }

    fn with_root(self) -> Self {
        let root = self.url.trim_start_matches("file://");
        std::fs::create_dir_all(root).unwrap();
        super::chmod_world(std::path::Path::new(root));
        self
    }

    /// A command for one of our tools (or any program) with this store's flags and
    /// environment; the caller adds the URL and the rest.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        self.configure(Command::new(program))
    }

    /// `program` run as the `postgres` user (as PostgreSQL, CloudNativePG and cron run our
    /// tools), with this store's flags and environment.
    pub fn command_as_postgres(&self, program: impl AsRef<OsStr>) -> Command {
        self.configure(super::pg::as_postgres(program))
    }

    fn configure(&self, mut cmd: Command) -> Command {
        cmd.args(&self.args).envs(self.env.iter().cloned());
        cmd
    }

    /// `program URL pg ...`. Leading options in `rest` go before the positionals: Barman's
    /// argparse rejects an option between `server_name` and the optional `wal_path`.
    pub fn tool(&self, program: impl AsRef<OsStr>, url: &str, rest: &[&str]) -> Command {
        let split = rest
            .iter()
            .position(|a| !a.starts_with('-'))
            .unwrap_or(rest.len());
        let (options, positionals) = rest.split_at(split);
        let mut cmd = self.command(program);
        cmd.args(options).arg(url).arg("pg").args(positionals);
        cmd
    }

    /// PostgreSQL's `archive_command` through our wal-archive into this store, server `pg`.
    pub fn archive_command(&self, compression: &str) -> String {
        format!(
            "{}{} {}{compression} '{}' pg %p",
            self.shell_env(),
            super::ours("barman-cloud-wal-archive").display(),
            self.shell_args(),
            self.url
        )
    }

    /// PostgreSQL's `restore_command` through our wal-restore from this store, server `pg`.
    pub fn restore_command(&self) -> String {
        format!(
            "{}{} {}'{}' pg %f %p",
            self.shell_env(),
            super::ours("barman-cloud-wal-restore").display(),
            self.shell_args(),
            self.url
        )
    }

    /// A shell prefix that sets this store's environment, for `archive_command`.
    pub fn shell_env(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| format!("{k}='{v}' "))
            .collect()
    }

    /// This store's flags, for a shell command line.
    pub fn shell_args(&self) -> String {
        self.args.iter().map(|a| format!("'{a}' ")).collect()
    }

    /// The emulator this store talks to (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        if let Some(endpoint) = &self.endpoint_url {
            return endpoint.clone();
        }
        if let Some((_, host)) = self.env.iter().find(|(k, _)| k == "STORAGE_EMULATOR_HOST") {
            return host.clone();
        }
        // Azure: the endpoint is the start of the URL.
        self.url.split('/').take(3).collect::<Vec<_>>().join("/")
    }

    /// The same bucket reached through another endpoint (a fault proxy in front of it).
    pub fn through(&self, endpoint: &str) -> Store {
        let original = self.endpoint();
        let swap = |s: &String| s.replace(&original, endpoint);
        Store {
            url: swap(&self.url),
            args: self.args.iter().map(swap).collect(),
            env: self.env.iter().map(|(k, v)| (k.clone(), swap(v))).collect(),
            cloud_provider: self.cloud_provider,
            endpoint_url: self.endpoint_url.as_ref().map(swap),
            _dir: None,
        }
    }

    /// The local directory behind a `file://` store.
    pub fn file_root(&self) -> Option<PathBuf> {
        self.url.strip_prefix("file://").map(PathBuf::from)
    }

    /// The library's client for this store at `url` (this store's or another in the same
    /// service), with the store's credentials as overrides.
    pub fn open(&self, url: &str) -> Storage {
        let location = Location::parse(url, self.cloud_provider).unwrap();
        let options = StorageOptions {
            provider: self.cloud_provider,
            endpoint_url: self.endpoint_url.clone(),
            env: self.env.clone(),
            ..Default::default()
        };
        Storage::open(&location, &options).unwrap()
    }

    /// The key of `sub` under the store's URL prefix.
    pub fn key(&self, storage: &Storage, sub: &str) -> Path {
        let prefix = storage.location().prefix.trim_matches('/');
        if sub.is_empty() {
            Path::from(prefix)
        } else {
            Path::from(format!("{prefix}/{sub}"))
        }
    }

    /// The bucket of an S3 store's URL.
    pub fn bucket(&self) -> &str {
        let rest = self.url.trim_start_matches("s3://");
        rest.split('/').next().unwrap_or(rest)
    }

    /// Every key under the store's URL prefix plus `sub`, sorted.
    pub fn list_keys(&self, sub: &str) -> Vec<String> {
        let storage = self.open(&self.url);
        let dir = self.key(&storage, sub);
        let mut keys: Vec<String> = block_on(storage.list_all(&dir))
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        keys.sort();
        keys
    }

    /// The bytes of the object at `sub` under the store's URL prefix.
    pub fn get_bytes(&self, sub: &str) -> Vec<u8> {
        let storage = self.open(&self.url);
        block_on(storage.get(&self.key(&storage, sub)))
            .unwrap()
            .to_vec()
    }

    /// Stores `data` at `sub` under the store's URL prefix, replacing what was there.
    pub fn put_bytes(&self, sub: &str, data: Vec<u8>) {
        let storage = self.open(&self.url);
        let (key, options) = (
            self.key(&storage, sub),
            barman_cloud::storage::WriteOptions::default(),
        );
        block_on(storage.put(&key, bytes::Bytes::from(data), &options)).unwrap();
    }

    /// Deletes the object at `sub` under the store's URL prefix.
    pub fn delete(&self, sub: &str) {
        let storage = self.open(&self.url);
        block_on(storage.delete(&self.key(&storage, sub))).unwrap();
    }

    /// The value of `field` in backup `id`'s `backup.info` of server `pg`.
    pub fn info_field(&self, id: &str, field: &str) -> String {
        let info = self.get_text(&format!("pg/base/{id}/backup.info"));
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}=")))
            .unwrap_or_else(|| panic!("no {field} in backup.info:\n{info}"))
            .to_string()
    }

    /// The text of the object at `sub` under the store's URL prefix.
    pub fn get_text(&self, sub: &str) -> String {
        let storage = self.open(&self.url);
        let bytes = block_on(storage.get(&self.key(&storage, sub))).unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

/// Runs a future of the library on a runtime of its own, for a test that is not async.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}
