//! An ObjectStore's credentials → the environment and the `--cloud-provider` options of the
//! `barman-cloud-*` commands, exactly as the plugin's Go library sets them (architecture §7,
//! `pkg/credentials/env.go` and `pkg/command/commandbuilder.go` of cloudnative-pg/barman-cloud):
//! AWS keys, region and session token; Azure connection string, account, key or SAS token;
//! the GCS key written to a 0600 file; the endpoint's CA bundle.
//!
//! The library picks the environment's provider in the order S3, Google, Azure but the
//! `--cloud-provider` option in the order S3, Azure, Google; both orders are kept, so a store
//! that (invalidly) names two providers behaves as with the plugin.
//!
//! Not reproduced, because nothing can observe it: for WAL restore and backup the plugin
//! first sets the CA variable to `/controller/certificates/backup-barman-ca.crt`, but always
//! under the same condition as the per-store path, which it then adds after it (and which
//! wins, by its `MergeEnv` for restore and by exec's last-entry rule for backup).
//!
//! Differences from the library, on inputs it mishandles: a `googleCredentials` block with
//! neither a key nor `gkeEnvironment` is an error here (the library dereferences a nil
//! selector); with `gkeEnvironment` alone the key file is removed, as the library's code
//! intends, where it in fact writes an empty file (unused: the variable is not set).
//!
//! Values come from Secrets: they go into the returned variables and the GCS file only,
//! never into an error or a log line.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kubernetes::{self, Kubernetes};
use crate::objectstore::{
    AzureCredentials, BarmanObjectStoreConfiguration, GoogleCredentials, ObjectStore,
    S3Credentials, SecretKeySelector,
};

/// Where the kubelet mounts the `barman-certificates` projected volume: one
/// `<store>/barman-ca.crt` per store with an `endpointCA`.
pub const CERTIFICATES_ROOT: &str = "/barman-certificates";

/// The file name of a store's CA bundle under [`CERTIFICATES_ROOT`]`/<store>/`.
pub const CERTIFICATE_FILE: &str = "barman-ca.crt";

/// The GCS key's file name under the controller volume.
pub const GOOGLE_CREDENTIALS_FILE: &str = ".application_credentials.json";

/// `--cloud-provider P [--credential C]` for the store's provider block (S3, then Azure, then
/// Google, as the plugin checks them); nothing when no block is present.
pub fn cloud_provider_args(configuration: &BarmanObjectStoreConfiguration) -> Vec<String> {
    let pair = |provider: &str| vec!["--cloud-provider".to_owned(), provider.to_owned()];
    if configuration.s3_credentials.is_some() {
        pair("aws-s3")
    } else if let Some(azure) = &configuration.azure_credentials {
        let mut args = pair("azure-blob-storage");
        // `useDefaultAzureCredentials` wins over `inheritFromAzureAD`, as in the library.
        let credential = if azure.use_default_azure_credentials {
            Some("default")
        } else if azure.inherit_from_azure_ad {
            Some("managed-identity")
        } else {
            None
        };
        if let Some(credential) = credential {
            args.extend(["--credential".to_owned(), credential.to_owned()]);
        }
        args
    } else if configuration.google_credentials.is_some() {
        pair("google-cloud-storage")
    } else {
        Vec::new()
    }
}

/// `/barman-certificates/<store>/barman-ca.crt`: the CA bundle of the store's endpoint.
pub fn certificate_path(store: &str) -> PathBuf {
    Path::new(CERTIFICATES_ROOT)
        .join(store)
        .join(CERTIFICATE_FILE)
}

/// The variables to add to the sidecar's own environment for one store's commands, in the
/// plugin's order: the CA bundle variable first, then the provider's.
///
/// For a GCS key, the key is (re)written to `<controller_root>/.application_credentials.json`
/// (mode 0600, replaced atomically); with `gkeEnvironment` and no key, that file is removed.
///
/// # Errors
/// When a referenced Secret or key cannot be read or is not text, a required reference is
/// missing, the store has no credentials block, or the GCS key file cannot be written.
pub async fn environment(
    kubernetes: &Kubernetes,
    store: &ObjectStore,
    controller_root: &Path,
) -> Result<Vec<(String, String)>, kubernetes::Error> {
    let configuration = &store.spec.configuration;
    let mut env = Vec::new();
    if configuration.endpoint_ca.is_some() {
        let bundle = certificate_path(&store.metadata.name)
            .to_string_lossy()
            .into_owned();
        if configuration.s3_credentials.is_some() {
            env.push(("AWS_CA_BUNDLE".to_owned(), bundle));
        } else if configuration.azure_credentials.is_some() {
            env.push(("REQUESTS_CA_BUNDLE".to_owned(), bundle));
        }
    }
    let reader = Reader { kubernetes, store };
    if let Some(s3) = &configuration.s3_credentials {
        reader.s3(s3, &mut env).await?;
    } else if let Some(google) = &configuration.google_credentials {
        reader.google(google, controller_root, &mut env).await?;
    } else if let Some(azure) = &configuration.azure_credentials {
        reader.azure(azure, &mut env).await?;
    } else {
        return Err(reader.invalid(
            "no credentials defined; set s3Credentials, azureCredentials or googleCredentials \
             in spec.configuration",
        ));
    }
    Ok(env)
}

/// Reads one store's Secret references.
struct Reader<'a> {
    kubernetes: &'a Kubernetes,
    store: &'a ObjectStore,
}

impl Reader<'_> {
    fn invalid(&self, problem: &'static str) -> kubernetes::Error {
        kubernetes::Error::Credentials {
            namespace: self.kubernetes.namespace().to_owned(),
            store: self.store.metadata.name.clone(),
            problem,
        }
    }

    /// The value of `selector` as text (environment values are strings).
    async fn text(&self, selector: &SecretKeySelector) -> Result<String, kubernetes::Error> {
        let value = self.kubernetes.secret_value(selector).await?;
        String::from_utf8(value).map_err(|_| kubernetes::Error::NotText {
            namespace: self.kubernetes.namespace().to_owned(),
            name: selector.name.clone(),
            key: selector.key.clone(),
        })
    }

    /// Both keys are required (read first, in this order); region and session token are
    /// optional; the variables are added region, token, key id, secret key.
    async fn s3(
        &self,
        s3: &S3Credentials,
        env: &mut Vec<(String, String)>,
    ) -> Result<(), kubernetes::Error> {
        if s3.inherit_from_iam_role {
            return Ok(());
        }
        let access_key_id = s3.access_key_id.as_ref().ok_or_else(|| {
            self.invalid(
                "s3Credentials has no accessKeyId; set it (with secretAccessKey) or \
                 inheritFromIAMRole",
            )
        })?;
        let access_key_id = self.text(access_key_id).await?;
        let secret_access_key = s3.secret_access_key.as_ref().ok_or_else(|| {
            self.invalid("s3Credentials has no secretAccessKey; set it next to accessKeyId")
        })?;
        let secret_access_key = self.text(secret_access_key).await?;
        if let Some(region) = &s3.region {
            env.push(("AWS_DEFAULT_REGION".to_owned(), self.text(region).await?));
        }
        if let Some(token) = &s3.session_token {
            env.push(("AWS_SESSION_TOKEN".to_owned(), self.text(token).await?));
        }
        env.push(("AWS_ACCESS_KEY_ID".to_owned(), access_key_id));
        env.push(("AWS_SECRET_ACCESS_KEY".to_owned(), secret_access_key));
        Ok(())
    }

    /// Each referenced Secret key becomes its variable; an Azure identity adds nothing (the
    /// command gets `--credential` instead).
    async fn azure(
        &self,
        azure: &AzureCredentials,
        env: &mut Vec<(String, String)>,
    ) -> Result<(), kubernetes::Error> {
        if azure.inherit_from_azure_ad || azure.use_default_azure_credentials {
            return Ok(());
        }
        for (variable, selector) in [
            ("AZURE_STORAGE_ACCOUNT", &azure.storage_account),
            ("AZURE_STORAGE_KEY", &azure.storage_key),
            ("AZURE_STORAGE_SAS_TOKEN", &azure.storage_sas_token),
            ("AZURE_STORAGE_CONNECTION_STRING", &azure.connection_string),
        ] {
            if let Some(selector) = selector {
                env.push((variable.to_owned(), self.text(selector).await?));
            }
        }
        Ok(())
    }

    /// The key goes to a file, whose path goes to `GOOGLE_APPLICATION_CREDENTIALS`.
    async fn google(
        &self,
        google: &GoogleCredentials,
        controller_root: &Path,
        env: &mut Vec<(String, String)>,
    ) -> Result<(), kubernetes::Error> {
        let path = controller_root.join(GOOGLE_CREDENTIALS_FILE);
        let Some(selector) = &google.application_credentials else {
            if !google.gke_environment {
                return Err(self.invalid(
                    "googleCredentials sets neither applicationCredentials nor gkeEnvironment; \
                     set one of them",
                ));
            }
            // A key left by an earlier configuration must not be picked up.
            return match fs::remove_file(&path) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => {
                    Err(kubernetes::Error::WriteFile {
                        path,
                        source: error,
                    })
                }
                _ => Ok(()),
            };
        };
        let key = self.kubernetes.secret_value(selector).await?;
        write_private_atomically(&path, &key).map_err(|source| kubernetes::Error::WriteFile {
            path: path.clone(),
            source,
        })?;
        env.push((
            "GOOGLE_APPLICATION_CREDENTIALS".to_owned(),
            path.to_string_lossy().into_owned(),
        ));
        Ok(())
    }
}

/// Writes `contents` to `path` with mode 0600 through a temporary file in the same directory
/// and a rename, so a concurrent command never reads half a key. Concurrent calls (parallel
/// WAL archiving) each use their own temporary file. An identical file is left alone.
fn write_private_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    if fs::read(path).is_ok_and(|existing| existing == contents) {
        return Ok(());
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let temporary = PathBuf::from(temporary);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectstore::SecretKeySelector;

    fn selector(name: &str) -> Option<SecretKeySelector> {
        Some(SecretKeySelector {
            name: name.into(),
            key: "k".into(),
        })
    }

    fn args(configuration: &BarmanObjectStoreConfiguration) -> Vec<String> {
        cloud_provider_args(configuration)
    }

    #[test]
    fn each_provider_block_names_its_cloud_provider() {
        let mut configuration = BarmanObjectStoreConfiguration::default();
        assert!(args(&configuration).is_empty());
        configuration.google_credentials = Some(GoogleCredentials::default());
        assert_eq!(
            args(&configuration),
            ["--cloud-provider", "google-cloud-storage"]
        );
        configuration.azure_credentials = Some(AzureCredentials::default());
        assert_eq!(
            args(&configuration),
            ["--cloud-provider", "azure-blob-storage"]
        );
        configuration.s3_credentials = Some(S3Credentials {
            inherit_from_iam_role: true,
            ..S3Credentials::default()
        });
        assert_eq!(args(&configuration), ["--cloud-provider", "aws-s3"]);
    }

    #[test]
    fn an_azure_identity_adds_its_credential_option() {
        let mut azure = AzureCredentials {
            connection_string: selector("conn"),
            ..AzureCredentials::default()
        };
        let with = |azure: &AzureCredentials| {
            args(&BarmanObjectStoreConfiguration {
                azure_credentials: Some(azure.clone()),
                ..BarmanObjectStoreConfiguration::default()
            })
        };
        assert_eq!(with(&azure), ["--cloud-provider", "azure-blob-storage"]);
        azure.inherit_from_azure_ad = true;
        assert_eq!(
            with(&azure),
            [
                "--cloud-provider",
                "azure-blob-storage",
                "--credential",
                "managed-identity"
            ]
        );
        azure.use_default_azure_credentials = true;
        assert_eq!(
            with(&azure),
            [
                "--cloud-provider",
                "azure-blob-storage",
                "--credential",
                "default"
            ]
        );
    }

    #[test]
    fn the_certificate_path_is_under_the_projected_volume() {
        assert_eq!(
            certificate_path("minio-store"),
            PathBuf::from("/barman-certificates/minio-store/barman-ca.crt")
        );
    }

    #[test]
    fn the_key_file_is_private_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(GOOGLE_CREDENTIALS_FILE);
        write_private_atomically(&path, b"{\"a\":1}").unwrap();
        write_private_atomically(&path, b"{\"b\":2}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"b\":2}");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            [GOOGLE_CREDENTIALS_FILE],
            "no temporary file is left"
        );
    }
}
