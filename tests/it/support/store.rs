//! One bucket per test on each provider: file, S3 (moto), Azure (Azurite), GCS emulator.

use std::process::Command;

/// The providers a test matrix runs over.
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
                    _dir: Some(dir),
                }
                .with_root()
            }
            Provider::S3 => {
                let endpoint = super::required("BCRS_S3_ENDPOINT")?;
                let status = Command::new("curl")
                    .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
                    .status()
                    .unwrap();
                assert!(
                    status.success(),
                    "cannot create bucket {bucket} on {endpoint}"
                );
                Store {
                    url: format!("s3://{bucket}/prefix"),
                    args: vec!["--endpoint-url".into(), endpoint],
                    env: vec![
                        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
                        ("AWS_SECRET_ACCESS_KEY".into(), "testing-secret".into()),
                        ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
                    ],
                    _dir: None,
                }
            }
            Provider::Azure => {
                let endpoint = super::required("BCRS_AZURE_ENDPOINT")?;
                let conn = super::required("BCRS_AZURE_CONNECTION_STRING")?;
                let python = format!("{}/python", super::required("BCRS_BARMAN_BIN")?);
                let script = "import sys; from azure.storage.blob import BlobServiceClient as C; \
                              C.from_connection_string(sys.argv[1]).create_container(sys.argv[2])";
                let status = Command::new(python)
                    .args(["-c", script, &conn, &bucket])
                    .status()
                    .unwrap();
                assert!(status.success(), "cannot create container {bucket}");
                Store {
                    url: format!("{endpoint}/{bucket}/prefix"),
                    args: vec!["--cloud-provider".into(), "azure-blob-storage".into()],
                    env: vec![("AZURE_STORAGE_CONNECTION_STRING".into(), conn)],
                    _dir: None,
                }
            }
            Provider::Gcs => {
                let endpoint = super::required("BCRS_GCS_ENDPOINT")?;
                let body = format!("{{\"name\": \"{bucket}\"}}");
                let url = format!("{endpoint}/storage/v1/b?project=test");
                let status = Command::new("curl")
                    .args([
                        "-sf",
                        "-o",
                        "/dev/null",
                        "-X",
                        "POST",
                        "-H",
                        "Content-Type: application/json",
                        "-d",
                        &body,
                        &url,
                    ])
                    .status()
                    .unwrap();
                assert!(
                    status.success(),
                    "cannot create bucket {bucket} on {endpoint}"
                );
                Store {
                    url: format!("gs://{bucket}/prefix"),
                    args: vec!["--cloud-provider".into(), "google-cloud-storage".into()],
                    env: vec![("STORAGE_EMULATOR_HOST".into(), endpoint)],
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

    /// A command for one of our tools (or any program) with this store's flags and environment,
    /// and the given positionals after the URL.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
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
        if let Some(i) = self.args.iter().position(|a| a == "--endpoint-url") {
            return self.args[i + 1].clone();
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
            _dir: None,
        }
    }

    /// The local directory behind a `file://` store.
    pub fn file_root(&self) -> Option<std::path::PathBuf> {
        self.url
            .strip_prefix("file://")
            .map(std::path::PathBuf::from)
    }
}
