//! The two positionals every command starts with: where the backups are, and whose.

use std::marker::PhantomData;

use clap::Args;

use super::{CommonArgs, EncryptionArgs};
use crate::error::Result;
use crate::layout::Layout;
use crate::storage::Storage;

/// Which way a command moves data, which names its URL as Barman's help does: the commands
/// that write call it the destination, those that read call it the source.
pub trait Direction: Clone + Send + Sync + 'static {
    /// The URL's argument id, which the zsh completions show.
    const ID: &'static str;
    /// The URL's placeholder in the usage line.
    const VALUE_NAME: &'static str;
    /// The URL's help text.
    const HELP: &'static str;
}

/// wal-archive, check-wal-archive and backup: `DESTINATION_URL`.
#[derive(Debug, Clone)]
pub struct ToCloud;

/// The other six commands: `SOURCE_URL`.
#[derive(Debug, Clone)]
pub struct FromCloud;

/// Barman's example, plus the local form we add.
macro_rules! url_help {
    ($what:literal) => {
        concat!(
            "URL of the cloud ",
            $what,
            ", such as a bucket in AWS S3. For example: `s3://bucket/path/to/folder`, or \
             `file:///var/lib/backups` for a local directory"
        )
    };
}

impl Direction for ToCloud {
    const ID: &'static str = "destination_url";
    const VALUE_NAME: &'static str = "DESTINATION_URL";
    const HELP: &'static str = url_help!("destination");
}

impl Direction for FromCloud {
    const ID: &'static str = "source_url";
    const VALUE_NAME: &'static str = "SOURCE_URL";
    const HELP: &'static str = url_help!("source");
}

/// The URL and the server name, flattened first into each command so they stay its first
/// two positionals.
#[derive(Debug, Args)]
pub struct Destination<D: Direction> {
    #[arg(id = D::ID, value_name = D::VALUE_NAME, help = D::HELP)]
    pub url: String,
    /// The name of the server as configured in Barman.
    pub server_name: String,
    #[arg(skip)]
    direction: PhantomData<D>,
}

impl<D: Direction> Destination<D> {
    /// [`CommonArgs::open_unless_test`] for this URL and server.
    ///
    /// # Errors
    /// As [`CommonArgs::open_unless_test`].
    pub async fn open(
        &self,
        common: &CommonArgs,
        encryption: Option<&EncryptionArgs>,
    ) -> Result<Option<(Storage, Layout)>> {
        common
            .open_unless_test(&self.url, &self.server_name, encryption)
            .await
    }
}
