//! The options every command has, and the provider options they share.

use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

use super::heading;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::storage::{
    AddressingStyle, AzureCredential, Location, Provider, S3Encryption, Storage, StorageOptions,
};

/// Options every command has: help, verbosity, `--test`, the provider and its connection flags.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Show this help message and exit (`-h` is not help, as in Barman).
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Increase output verbosity (e.g., -vv is more than -v).
    #[arg(short, long, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Decrease output verbosity (e.g., -qq is less than -q).
    #[arg(short, long, action = ArgAction::Count)]
    pub quiet: u8,
    /// Test cloud connectivity and exit.
    #[arg(short = 't', long)]
    pub test: bool,
    /// Log lines as Barman writes them (text) or as JSON objects, one per line (our addition).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: crate::cli::logging::LogFormat,
    /// The cloud provider to use as a storage backend.
    #[arg(long, value_enum, default_value = "aws-s3")]
    pub cloud_provider: Provider,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// Options that apply to AWS S3, each under its heading: a heading set on the struct would
/// carry over to every option declared after it in the command.
#[derive(Debug, Args)]
pub struct S3Args {
    /// Override default S3 endpoint URL with the given one.
    #[arg(long, value_name = "ENDPOINT_URL", help_heading = heading::S3)]
    pub endpoint_url: Option<String>,
    /// Profile name (e.g. INI section in AWS credentials file).
    #[arg(
        short = 'P',
        long,
        visible_alias = "profile",
        value_name = "AWS_PROFILE",
        help_heading = heading::S3
    )]
    pub aws_profile: Option<String>,
    /// The time in seconds until a timeout is raised when waiting to read from a connection
    /// (defaults to 60 seconds).
    // Signed, as Barman's `type=int`: a negative value is not a usage error there but a
    // failure at connection time (exit 4), see `CommonArgs::storage_options`.
    #[arg(
        long,
        value_name = "READ_TIMEOUT",
        allow_negative_numbers = true,
        help_heading = heading::S3
    )]
    pub read_timeout: Option<i64>,
    /// The addressing style to use for S3 requests.
    #[arg(long, value_enum, default_value = "auto", help_heading = heading::S3)]
    pub addressing_style: AddressingStyle,
}

/// Options that apply to Azure Blob Storage.
#[derive(Debug, Args)]
pub struct AzureArgs {
    /// Optionally specify the type of credential to use when authenticating with Azure.
    /// If omitted then Azure Blob Storage credentials will be obtained from the environment.
    #[arg(long, visible_aliases = ["credential", "default"], value_enum, help_heading = heading::AZURE)]
    pub azure_credential: Option<AzureCredential>,
}

/// Server-side encryption options of the commands that write (wal-archive, backup).
#[derive(Debug, Args, Default)]
pub struct EncryptionArgs {
    /// The encryption algorithm used when storing the uploaded data in S3.
    #[arg(
        short = 'e',
        long = "encryption",
        value_enum,
        help_heading = heading::S3
    )]
    pub s3_encryption: Option<S3Encryption>,
    /// The AWS KMS key ID that should be used for encrypting the uploaded data in S3
    /// (requires -e aws:kms).
    #[arg(long, help_heading = heading::S3)]
    pub sse_kms_key_id: Option<String>,
    /// The name of an encryption scope defined in the Azure Blob Storage service which is to
    /// be used to encrypt the data in Azure.
    #[arg(
        long,
        help_heading = heading::AZURE
    )]
    pub encryption_scope: Option<String>,
    /// The name of the GCP KMS key which should be used for encrypting the uploaded data in GCS.
    #[arg(
        long,
        help_heading = heading::GCS
    )]
    pub kms_key_name: Option<String>,
}

impl CommonArgs {
    /// The storage options these flags describe, plus any encryption flags.
    ///
    /// # Errors
    /// [`Error::OptionValue`] for a `--read-timeout` that is not positive.
    pub fn storage_options(&self, encryption: Option<&EncryptionArgs>) -> Result<StorageOptions> {
        let e = encryption;
        let read_timeout = match self.s3.read_timeout {
            None => None,
            Some(seconds) if seconds > 0 => Some(Duration::from_secs(seconds.unsigned_abs())),
            Some(seconds) => {
                return Err(Error::OptionValue {
                    option: "--read-timeout",
                    value: seconds.to_string(),
                    fix: "use a number of seconds greater than 0",
                });
            }
        };
        Ok(StorageOptions {
            provider: self.cloud_provider,
            endpoint_url: self.s3.endpoint_url.clone(),
            aws_profile: self.s3.aws_profile.clone(),
            read_timeout,
            addressing_style: self.s3.addressing_style,
            azure_credential: self.azure.azure_credential,
            s3_encryption: e.and_then(|e| e.s3_encryption),
            sse_kms_key_id: e.and_then(|e| e.sse_kms_key_id.clone()),
            encryption_scope: e.and_then(|e| e.encryption_scope.clone()),
            kms_key_name: e.and_then(|e| e.kms_key_name.clone()),
            env: Vec::new(),
        })
    }

    /// These provider flags as arguments for another of our commands (the `restore_command`
    /// a restore writes). Nothing secret is among them: credentials only come from the
    /// environment or files.
    pub fn provider_argv(&self) -> Vec<String> {
        fn name(v: &impl ValueEnum) -> String {
            v.to_possible_value()
                .map(|p| p.get_name().to_string())
                .unwrap_or_default()
        }
        let mut argv = Vec::new();
        if self.cloud_provider != Provider::default() {
            argv.push("--cloud-provider".into());
            argv.push(name(&self.cloud_provider));
        }
        if let Some(url) = &self.s3.endpoint_url {
            argv.extend(["--endpoint-url".into(), url.clone()]);
        }
        if let Some(profile) = &self.s3.aws_profile {
            argv.extend(["--aws-profile".into(), profile.clone()]);
        }
        if let Some(timeout) = self.s3.read_timeout {
            argv.extend(["--read-timeout".into(), timeout.to_string()]);
        }
        if self.s3.addressing_style != AddressingStyle::default() {
            argv.push("--addressing-style".into());
            argv.push(name(&self.s3.addressing_style));
        }
        if let Some(credential) = self.azure.azure_credential {
            argv.push("--azure-credential".into());
            argv.push(name(&credential));
        }
        argv
    }

    /// Parses the URL and opens the store and the server's layout.
    ///
    /// # Errors
    /// Invalid URL or unusable configuration.
    pub fn open(
        &self,
        url: &str,
        server: &str,
        encryption: Option<&EncryptionArgs>,
    ) -> Result<(Storage, Layout)> {
        let location = Location::parse(url, self.cloud_provider)?;
        let layout = Layout::new(&location.prefix, server);
        let storage = Storage::open(&location, &self.storage_options(encryption)?)
            .map_err(|e| if self.test { e.during_test() } else { e })?;
        Ok((storage, layout))
    }

    /// Like [`CommonArgs::open`], but with `-t/--test` only checks connectivity and the
    /// bucket: `None` means the check passed and the command has nothing left to do.
    ///
    /// # Errors
    /// As [`CommonArgs::open`], and the check's failure.
    pub async fn open_unless_test(
        &self,
        url: &str,
        server: &str,
        encryption: Option<&EncryptionArgs>,
    ) -> Result<Option<(Storage, Layout)>> {
        let (storage, layout) = self.open(url, server, encryption)?;
        if self.test {
            storage.check().await?;
            return Ok(None);
        }
        Ok(Some((storage, layout)))
    }
}

/// `--format` of backup-list and backup-show.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format (console or json).
    #[arg(long, default_value = "console")]
    pub format: String,
}

impl FormatArgs {
    /// Whether to print JSON: Barman does for any value but `console`.
    pub fn json(&self) -> bool {
        self.format != "console"
    }
}
