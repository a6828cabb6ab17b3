//! Google Cloud Storage: every request goes through the JSON API (`json.rs` says why), and
//! object_store's GCS store only provides the credentials, over the same HTTP client.

mod json;

use std::sync::Arc;

use object_store::StaticCredentialProvider;
use object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder};

pub(super) use json::{GcsJson, ResumableUpload};

use super::StorageOptions;
use super::classify::config;
use super::client::{SharedClient, ca_bundle, client_options, read_timeout, reqwest_client, retry};
use super::credentials::Fallback;
use crate::error::{Error, Result};

/// The JSON-API client for `bucket`.
pub(super) fn json_api(bucket: &str, options: &StorageOptions) -> Result<GcsJson> {
    let base = base_url(options);
    let http = reqwest_client(&base, ca_bundle(options).as_deref(), read_timeout(options))
        .map_err(|e| Error::Config {
            provider: "GCS",
            source: Box::new(e),
        })?;
    let store = builder(bucket, options)
        .with_client_options(client_options(options))
        .with_http_connector(SharedClient(http.clone()))
        .build()
        .map_err(config("GCS"))?;
    let credentials = match metadata_fallback(options) {
        Some(looked_in) => Fallback::new(store.credentials().clone(), "GCS", looked_in),
        None => store.credentials().clone(),
    };
    Ok(GcsJson::new(
        http,
        &base,
        bucket,
        credentials,
        options.kms_key_name.clone(),
    ))
}

/// Where the chain looked, when it ends at the GCE metadata server because no key file is
/// named and the application default credentials file is absent (object_store's order in
/// `GoogleCloudStorageBuilder::build`).
fn metadata_fallback(options: &StorageOptions) -> Option<String> {
    if options.var("STORAGE_EMULATOR_HOST").is_some()
        || options.var("GOOGLE_APPLICATION_CREDENTIALS").is_some()
    {
        return None;
    }
    let adc = match std::env::var_os("HOME") {
        Some(home) => std::path::Path::new(&home)
            .join(".config/gcloud/application_default_credentials.json")
            .display()
            .to_string(),
        None => "~/.config/gcloud/application_default_credentials.json".into(),
    };
    if std::path::Path::new(&adc).exists() {
        return None;
    }
    Some(format!(
        "GOOGLE_APPLICATION_CREDENTIALS, {adc}, the GCE metadata server at \
         http://169.254.169.254"
    ))
}

/// Where GCS's JSON API answers: the emulator when `STORAGE_EMULATOR_HOST` is set.
pub(super) fn base_url(options: &StorageOptions) -> String {
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
