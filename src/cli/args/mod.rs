//! Flag groups shared by the commands, each defined once and flattened where it applies.

mod common;
mod compression;
mod destination;
mod parse;
mod tags;

pub use common::{AzureArgs, CommonArgs, EncryptionArgs, FormatArgs, S3Args};
pub use compression::{BackupCompressionArgs, WalCompressionArgs};
pub use destination::{Destination, Direction, FromCloud, ToCloud};
pub use parse::{input, parse_level, parse_size};
pub use tags::{TagArgs, parse_csv_tag, parse_tag, tags};

/// The help headings of the provider options, worded as Barman 3.19.1's `--help` words them.
/// Each option names its heading itself (`help_heading`): a `next_help_heading` would carry
/// over to every option declared after it.
pub mod heading {
    /// Options of AWS S3.
    pub const S3: &str = "Extra options for the aws-s3 cloud provider";
    /// Options of Azure Blob Storage.
    pub const AZURE: &str = "Extra options for the azure-blob-storage cloud provider";
    /// Options of Google Cloud Storage (Barman writes no "the" in this one).
    pub const GCS: &str = "Extra options for google-cloud-storage cloud provider";
}
