//! Flag groups shared by the commands, each defined once and flattened where it applies.

use std::time::Duration;

use clap::{ArgAction, Args, ValueEnum};

use crate::compress::{Compression, Level};
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
    pub log_format: super::logging::LogFormat,
    /// The cloud provider to use as a storage backend.
    #[arg(long, value_enum, default_value = "aws-s3")]
    pub cloud_provider: Provider,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub azure: AzureArgs,
}

/// Options that apply to AWS S3.
#[derive(Debug, Args)]
#[command(next_help_heading = "Extra options for the aws-s3 cloud provider")]
pub struct S3Args {
    /// Override default S3 endpoint URL with the given one.
    #[arg(long, value_name = "ENDPOINT_URL")]
    pub endpoint_url: Option<String>,
    /// Profile name (e.g. INI section in AWS credentials file).
    #[arg(
        short = 'P',
        long,
        visible_alias = "profile",
        value_name = "AWS_PROFILE"
    )]
    pub aws_profile: Option<String>,
    /// The time in seconds until a timeout is raised when waiting to read from a connection
    /// (defaults to 60 seconds).
    // Signed, as Barman's `type=int`: a negative value is not a usage error there but a
    // failure at connection time (exit 4), see `CommonArgs::storage_options`.
    #[arg(long, value_name = "READ_TIMEOUT", allow_negative_numbers = true)]
    pub read_timeout: Option<i64>,
    /// The addressing style to use for S3 requests.
    #[arg(long, value_enum, default_value = "auto")]
    pub addressing_style: AddressingStyle,
}

/// Options that apply to Azure Blob Storage.
#[derive(Debug, Args)]
#[command(next_help_heading = "Extra options for the azure-blob-storage cloud provider")]
pub struct AzureArgs {
    /// Optionally specify the type of credential to use when authenticating with Azure.
    /// If omitted then Azure Blob Storage credentials will be obtained from the environment.
    #[arg(long, visible_aliases = ["credential", "default"], value_enum)]
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
        help_heading = "Extra options for the aws-s3 cloud provider"
    )]
    pub s3_encryption: Option<S3Encryption>,
    /// The AWS KMS key ID that should be used for encrypting the uploaded data in S3
    /// (requires -e aws:kms).
    #[arg(long, help_heading = "Extra options for the aws-s3 cloud provider")]
    pub sse_kms_key_id: Option<String>,
    /// The name of an encryption scope defined in the Azure Blob Storage service which is to
    /// be used to encrypt the data in Azure.
    #[arg(
        long,
        help_heading = "Extra options for the azure-blob-storage cloud provider"
    )]
    pub encryption_scope: Option<String>,
    /// The name of the GCP KMS key which should be used for encrypting the uploaded data in GCS.
    #[arg(
        long,
        help_heading = "Extra options for the google-cloud-storage cloud provider"
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

/// The positionals of the commands that read a server's backups: where, and which server.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// URL of the cloud source, such as a bucket in AWS S3. For example:
    /// `s3://bucket/path/to/folder`, or `file:///var/lib/backups` for a local directory.
    pub source_url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
}

impl SourceArgs {
    /// [`CommonArgs::open_unless_test`] for this source.
    ///
    /// # Errors
    /// As [`CommonArgs::open_unless_test`].
    pub async fn open(&self, common: &CommonArgs) -> Result<Option<(Storage, Layout)>> {
        common
            .open_unless_test(&self.source_url, &self.server_name, None)
            .await
    }
}

/// `--format` of backup-list and backup-show.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Output format (console or json). Default console.
    #[arg(long, default_value = "console")]
    pub format: String,
}

impl FormatArgs {
    /// Whether to print JSON: Barman does for any value but `console`.
    pub fn json(&self) -> bool {
        self.format != "console"
    }
}

/// The WAL compression flags: mutually exclusive, none by default.
#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct WalCompressionArgs {
    /// gzip-compress the WAL while uploading to the cloud.
    #[arg(short = 'z', long)]
    pub gzip: bool,
    /// bzip2-compress the WAL while uploading to the cloud.
    #[arg(short = 'j', long)]
    pub bzip2: bool,
    /// xz-compress the WAL while uploading to the cloud.
    #[arg(long)]
    pub xz: bool,
    /// snappy-compress the WAL while uploading to the cloud.
    #[arg(long)]
    pub snappy: bool,
    /// zstd-compress the WAL while uploading to the cloud.
    #[arg(long)]
    pub zstd: bool,
    /// lz4-compress the WAL while uploading to the cloud.
    #[arg(long)]
    pub lz4: bool,
}

impl WalCompressionArgs {
    /// The chosen codec.
    pub fn compression(&self) -> Option<Compression> {
        [
            (self.gzip, Compression::Gzip),
            (self.bzip2, Compression::Bzip2),
            (self.xz, Compression::Xz),
            (self.snappy, Compression::Snappy),
            (self.zstd, Compression::Zstd),
            (self.lz4, Compression::Lz4),
        ]
        .into_iter()
        .find_map(|(on, c)| on.then_some(c))
    }
}

/// Parses `--compression-level`.
pub fn parse_level(s: &str) -> std::result::Result<Level, String> {
    s.parse::<Level>().map_err(|e| e.to_string())
}

/// `--tag K,V`: split at the first comma; Barman's character rules for S3 tags.
pub fn parse_tag(s: &str) -> std::result::Result<(String, String), String> {
    let invalid = || format!("Invalid tag format: {s} (expected KEY,VALUE)");
    let (k, v) = s.split_once(',').ok_or_else(invalid)?;
    let (k, v) = (k.trim(), v.trim());
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    if k.is_empty() || k.chars().count() > 128 || k.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!(
            "Invalid tag key '{k}': 1 to 128 characters, not starting with 'aws:'"
        ));
    }
    if v.chars().count() > 256 {
        return Err(format!(
            "Invalid tag value for '{k}': at most 256 characters"
        ));
    }
    if !k.chars().chain(v.chars()).all(allowed) {
        return Err(format!(
            "Invalid tag '{s}': use letters, digits, spaces and _ . : / = + - @"
        ));
    }
    Ok((k.to_string(), v.to_string()))
}

/// `--tags K,V ...`: each value is one CSV record of exactly two fields (quotes allowed).
pub fn parse_csv_tag(s: &str) -> std::result::Result<(String, String), String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    match <[String; 2]>::try_from(fields) {
        Ok([k, v]) if !quoted => Ok((k, v)),
        _ => Err(format!("Invalid tag format: {s}")),
    }
}

/// `--tags`/`--tag`: object tags on everything a command uploads.
#[derive(Debug, Args, Default)]
pub struct TagArgs {
    /// Tags, each as KEY,VALUE, to be added to the uploaded objects (deprecated form; ends at
    /// the next option).
    #[arg(long, num_args = 0.., value_parser = parse_csv_tag, conflicts_with = "tag", value_name = "TAG")]
    pub tags: Option<Vec<(String, String)>>,
    /// A KEY,VALUE tag to be added to the uploaded objects (repeatable).
    #[arg(long, value_parser = parse_tag)]
    pub tag: Vec<(String, String)>,
}

impl TagArgs {
    /// Both forms merged.
    pub fn pairs(&self) -> Vec<(String, String)> {
        tags(self.tags.as_ref(), &self.tag)
    }
}

/// The backup compression flags (tarballs: no xz, no zstd, no level).
#[derive(Debug, Args, Default)]
#[group(multiple = false)]
pub struct BackupCompressionArgs {
    /// gzip-compress the backup while uploading to the cloud.
    #[arg(short = 'z', long)]
    pub gzip: bool,
    /// bzip2-compress the backup while uploading to the cloud.
    #[arg(short = 'j', long)]
    pub bzip2: bool,
    /// snappy-compress the backup while uploading to the cloud.
    #[arg(long)]
    pub snappy: bool,
    /// lz4-compress the backup while uploading to the cloud.
    #[arg(long)]
    pub lz4: bool,
}

impl BackupCompressionArgs {
    /// The chosen codec.
    pub fn compression(&self) -> Option<Compression> {
        [
            (self.gzip, Compression::Gzip),
            (self.bzip2, Compression::Bzip2),
            (self.snappy, Compression::Snappy),
            (self.lz4, Compression::Lz4),
        ]
        .into_iter()
        .find_map(|(on, c)| on.then_some(c))
    }
}

/// Merges `--tags` (deprecated form) and `--tag` into one list.
pub fn tags(
    csv: Option<&Vec<(String, String)>>,
    single: &[(String, String)],
) -> Vec<(String, String)> {
    csv.into_iter().flatten().chain(single).cloned().collect()
}

/// Rejects an option that needs a value which is out of range, as a usage error.
pub fn input(message: impl Into<String>) -> Error {
    Error::Input(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_parse_like_barman() {
        assert_eq!(
            parse_tag(" env , test ").unwrap(),
            ("env".into(), "test".into())
        );
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("aws:x,1").is_err());
        assert!(parse_tag("k,v!").is_err());
        assert_eq!(
            parse_csv_tag("\"a,b\",c").unwrap(),
            ("a,b".into(), "c".into())
        );
        assert!(parse_csv_tag("a,b,c").is_err());
        assert!(parse_csv_tag("s3://bucket/path").is_err());
    }
}

/// Parses a size as Barman's `check_size` does: bytes, or a number with a unit where
/// `KB`/`MB`/`GB`... are powers of 1024 and `KiB`/`MiB`/`GiB`... powers of 1000 (sic: the
/// reverse of IEC, kept for compatibility).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let invalid =
        || format!("'{s}' is not a valid size: use bytes or a number with a unit such as 64MB");
    let lower = s.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let number: f64 = number.parse().map_err(|_| invalid())?;
    let (prefix, base) = match unit {
        "" => ("", 1024.0),
        u if u.ends_with("ib") => (&u[..u.len() - 2], 1000.0),
        u if u.ends_with('b') => (&u[..u.len() - 1], 1024.0),
        _ => return Err(invalid()),
    };
    let power = match prefix {
        "" => 0,
        p => {
            "kmgtpezy"
                .find(p)
                .filter(|_| p.len() == 1)
                .ok_or_else(invalid)? as i32
                + 1
        }
    };
    let bytes = number * f64::powi(base, power);
    if bytes < 1.0 {
        return Err(format!(
            "'{s}' is not a valid size: it must be at least 1 byte"
        ));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes_follow_barman_units() {
        assert_eq!(parse_size("4MB"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_size("4MiB"), Ok(4_000_000));
        assert_eq!(parse_size("1.5gb"), Ok(1_610_612_736));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("12XB").is_err());
    }
}
