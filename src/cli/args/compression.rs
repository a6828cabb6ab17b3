//! The compression flags: one mutually exclusive group each for WAL files and for tarballs.

use clap::Args;

use crate::compress::Compression::{self, Bzip2, Gzip, Lz4, Snappy, Xz, Zstd};

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
            (self.gzip, Gzip),
            (self.bzip2, Bzip2),
            (self.xz, Xz),
            (self.snappy, Snappy),
            (self.zstd, Zstd),
            (self.lz4, Lz4),
        ]
        .into_iter()
        .find_map(|(on, c)| on.then_some(c))
    }
}

/// The backup compression flags (tarballs: Barman's four, and our zstd; no xz).
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
    /// Our addition: zstd-compress the backup while uploading to the cloud (level 3 unless
    /// --compression-level, on every core). Barman's barman-cloud-restore and
    /// barman-cloud-backup-delete skip .tar.zst parts: restore and delete such a backup
    /// with ours.
    #[arg(long)]
    pub zstd: bool,
}

impl BackupCompressionArgs {
    /// The chosen codec, by the WAL flags' rule.
    pub fn compression(&self) -> Option<Compression> {
        let &Self {
            gzip,
            bzip2,
            snappy,
            lz4,
            zstd,
        } = self;
        let wal = WalCompressionArgs {
            gzip,
            bzip2,
            snappy,
            lz4,
            zstd,
            ..WalCompressionArgs::default()
        };
        wal.compression()
    }
}
