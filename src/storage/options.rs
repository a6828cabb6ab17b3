//! How to reach a store: the provider flags every command shares, and the environment they
//! are read together with.

use std::time::Duration;

use super::Provider;

/// `--addressing-style` for S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum AzureCredential {
    /// The `az` command line's login.
    AzureCli,
    /// The VM's or pod's managed identity.
    ManagedIdentity,
    /// The default chain (environment, workload identity, managed identity, CLI).
    Default,
}

/// `-e/--encryption` for S3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum S3Encryption {
    /// SSE-S3.
    #[cfg_attr(feature = "cli", value(name = "AES256"))]
    Aes256,
    /// SSE-KMS.
    #[cfg_attr(feature = "cli", value(name = "aws:kms"))]
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
    pub(super) fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }
}
