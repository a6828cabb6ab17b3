//! Google Cloud Storage: every request goes through the JSON API (`json.rs` says why), and
//! object_store's GCS store only provides the credentials, over the same HTTP client.

mod json;

use std::sync::Arc;

use object_store::StaticCredentialProvider;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};

pub(super) use json::{GcsError, GcsJson, ResumableUpload};

use super::StorageOptions;
use super::classify::config;
use super::client::{SharedClient, ca_bundle, client_options, read_timeout, retry};
use crate::error::{Error, Result};

/// The JSON-API client for `bucket`.
pub(super) fn json_api(bucket: &str, options: &StorageOptions) -> Result<GcsJson> {
    let base = base_url(options);
    let http =
        json::client(&base, ca_bundle(options).as_deref(), read_timeout(options)).map_err(|e| {
            Error::Config {
                provider: "GCS",
                source: Box::new(e),
            }
        })?;
    let store = builder(bucket, options)
        .with_client_options(client_options(options))
        .with_http_connector(SharedClient(http.clone()))
        .build()
        .map_err(config("GCS"))?;
    Ok(GcsJson::new(
        http,
        &base,
        bucket,
        store.credentials().clone(),
        options.kms_key_name.clone(),
    ))
}

/// Where GCS's JSON API answers: the emulator when `STORAGE_EMULATOR_HOST` is set.
fn base_url(options: &StorageOptions) -> String {
    match options.var("STORAGE_EMULATOR_HOST") {
        Some(host) if host.contains("://") => host,
        Some(host) => format!("http://{host}"),
        None => "https://storage.googleapis.com".into(),
    }
}

fn builder(bucket: &str, options: &StorageOptions) -> GoogleCloudStorageBuilder {
    let env = |name: &str| options.var(name);
    let b = GoogleCloudStorageBuilder::new()
        .with_bucket_name(bucket)
        .with_retry(retry());
    if env("STORAGE_EMULATOR_HOST").is_some() {
        // The emulator takes anonymous requests, as google-cloud-storage sends them there.
        return b
            .with_base_url(base_url(options).trim_end_matches('/'))
            .with_credentials(Arc::new(StaticCredentialProvider::new(GcpCredential {
                bearer: String::new(),
            })));
    }
    match env("GOOGLE_APPLICATION_CREDENTIALS") {
        Some(path) => b.with_application_credentials(path),
        None => b,
    }
}
