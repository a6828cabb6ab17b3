//! The compression flags: one mutually exclusive group each for WAL files and for tarballs.

use clap::Args;

use crate::compress::Compression;

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
        chosen([
            (self.gzip, Compression::Gzip),
            (self.bzip2, Compression::Bzip2),
            (self.xz, Compression::Xz),
            (self.snappy, Compression::Snappy),
            (self.zstd, Compression::Zstd),
            (self.lz4, Compression::Lz4),
        ])
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
        chosen([
            (self.gzip, Compression::Gzip),
            (self.bzip2, Compression::Bzip2),
            (self.snappy, Compression::Snappy),
            (self.lz4, Compression::Lz4),
        ])
    }
}

/// The codec whose flag is set; clap's group lets at most one be.
fn chosen<const N: usize>(flags: [(bool, Compression); N]) -> Option<Compression> {
    flags.into_iter().find_map(|(on, c)| on.then_some(c))
}
