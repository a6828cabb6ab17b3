//! Library errors and the one place they become Barman's exit codes.
//!
//! Every failure a user can meet is a variant with a meaning (not found, conflict, network,
//! bad input, ...), so the CLI decides the exit code from the variant and never from the text.
//! Barman's classes (`barman/clients/cloud_cli.py`) are 1 operation failed, 2 connection,
//! 3 command-line input, 4 anything else.

use std::path::PathBuf;

use crate::postgres::InvalidWalName;

/// Barman's exit-code classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitClass {
    /// 1: the operation ran and failed (not found, refused, conflict).
    Operation = 1,
    /// 2: the object store could not be reached.
    Network = 2,
    /// 3: bad command-line input.
    Input = 3,
    /// 4: anything else.
    General = 4,
    /// 255 (ours): wal-restore found the WAL file damaged in the archive. PostgreSQL takes
    /// 1 to 125 as "not in the archive", the end of recovery: a PITR would promote at the
    /// damaged segment and lose every later transaction without a word. Above 125 it takes
    /// the command as broken and stops recovery (FATAL), as its own "wrong size" check does
    /// for the same reason; recovery resumes once the object is repaired.
    StopRecovery = 255,
}

/// The library's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad command-line input that parsing alone could not catch.
    #[error("{0}")]
    Input(String),

    /// A name that is not a WAL file name.
    #[error(transparent)]
    InvalidWalName(#[from] InvalidWalName),

    /// The destination URL cannot be used.
    #[error("invalid destination '{url}': {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The requested WAL is not in the archive (PostgreSQL treats this as the end of the archive).
    #[error("WAL file {name} for server {server} does not exist")]
    WalNotFound { name: String, server: String },

    /// A WAL with this name is already archived with different content.
    #[error(
        "WAL file {name} is already archived as '{key}' with different content; refusing to \
         overwrite it (check that only one server archives to server name '{server}')"
    )]
    WalConflict {
        name: String,
        key: String,
        server: String,
    },

    /// check-wal-archive found WAL files where a new server must find none.
    #[error("WAL archive check failed for server {server}: {reason}")]
    ArchiveNotUsable { server: String, reason: String },

    /// An object that was expected is not in the store.
    #[error("object '{key}' does not exist")]
    ObjectNotFound { key: String },

    /// The bucket or container does not exist (an operation needed it: exit 4 as Barman's).
    #[error("bucket '{bucket}' does not exist: create it, or check the destination URL")]
    BucketNotFound { bucket: String },

    /// `-t/--test` found no bucket (Barman exits 1 here, not 4).
    #[error("bucket '{bucket}' does not exist: create it, or check the destination URL")]
    BucketCheckFailed { bucket: String },

    /// The object store could not be reached.
    #[error("can't connect to cloud provider: {endpoint} ({})", one_line(&**source))]
    Connection {
        /// The destination URL, without its query string.
        endpoint: String,
        source: Source,
    },

    /// The object store refused or failed a request.
    #[error("cannot {action} '{key}': {}", one_line(&**source))]
    Storage {
        action: &'static str,
        key: String,
        source: Source,
    },

    /// The store refused our credentials or their permissions.
    #[error(
        "cannot {action} '{key}': access denied: check the credentials (AWS_*, AZURE_STORAGE_*, \
         GOOGLE_APPLICATION_CREDENTIALS, --aws-profile, --azure-credential) and their permissions"
    )]
    AccessDenied { action: &'static str, key: String },

    /// The store was configured with something it cannot use.
    #[error("cannot configure the {provider} client: {source}")]
    Config {
        provider: &'static str,
        source: Source,
    },

    /// A stored object could not be decoded.
    #[error("cannot decompress '{key}': {source}; the object is corrupt or has the wrong suffix")]
    Corrupt { key: String, source: std::io::Error },

    /// A local file operation failed.
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A backup started and then failed; its `backup.info` says FAILED.
    #[error("backup {backup_id} failed: {reason}")]
    BackupFailed {
        backup_id: String,
        reason: Box<Error>,
    },

    /// PostgreSQL could not be reached (Barman exits 1 here).
    #[error("Cannot connect to postgres: {message}")]
    PgConnect { message: String },

    /// A PostgreSQL query failed.
    #[error("cannot {action} on PostgreSQL: {message}")]
    Postgres {
        action: &'static str,
        message: String,
    },
    /// An ID-shaped backup reference with no `backup.info` behind it (Barman's wording, typo
    /// included, so log watchers keep matching).
    #[error(
        "Backup {id} for server {server} does not exists: list the backups with \
         barman-cloud-backup-list"
    )]
    BackupNotFound { id: String, server: String },

    /// A backup shown by ID that has no `backup.info` (Barman's show wording).
    #[error(
        "Backup {id} for server {server} does not exist: list the backups with \
         barman-cloud-backup-list"
    )]
    NoSuchBackup { id: String, server: String },

    /// Deletion refuses to run over a catalog with holes in it.
    #[error(
        "Cannot read the following backups: {}: unsafe to proceed with deletion due to \
         failure reading backup catalog; repair or remove their backup.info",
        ids.join(", ")
    )]
    UnreadableCatalog { ids: Vec<String> },

    /// `backup-delete -b` of a backup with a keep annotation.
    #[error(
        "Skipping delete of backup {id} for server {server} as it has a current keep \
         request: release it with barman-cloud-backup-keep --release and try again"
    )]
    BackupKept { id: String, server: String },

    /// `backup-delete -b` would leave fewer backups than `--minimum-redundancy`.
    #[error(
        "Skipping delete of backup {id} for server {server} due to minimum redundancy \
         requirements (minimum redundancy = {minimum}, current redundancy = {current}): \
         lower -m or take another backup first"
    )]
    MinimumRedundancy {
        id: String,
        server: String,
        minimum: u32,
        current: usize,
    },

    /// A backup's objects could not all be deleted; its `backup.info` is left so that the
    /// deletion can be retried.
    #[error("Could not delete backup {id}: {reason}; run the deletion again")]
    DeleteFailed { id: String, reason: Box<Error> },

    /// `backup-keep --target` of a backup that is not DONE.
    #[error(
        "Cannot add keep to backup {id} because it has status {status}. Only backups with \
         status DONE can be kept."
    )]
    NotKeepable { id: String, status: String },

    /// `backup-keep --target` of an ID with no `backup.info` (Barman exits 4 here).
    #[error(
        "Cannot add keep to backup {id} of server {server}: it has no backup.info; list the \
         backups with barman-cloud-backup-list"
    )]
    KeepWithoutBackup { id: String, server: String },

    /// A backup reference that is neither an ID, a shortcut nor a known name.
    #[error(
        "Unknown backup '{reference}' for server '{server}': use a backup ID, a name given \
         with -n, or latest, oldest, last-failed"
    )]
    UnknownBackup { reference: String, server: String },

    /// A backup name that several backups carry.
    #[error(
        "Multiple backups found matching name '{name}' (try using backup ID instead): {}",
        ids.join(" ")
    )]
    AmbiguousBackupName { name: String, ids: Vec<String> },

    /// `auto` found no backup that satisfies the recovery targets.
    #[error(
        "Cannot find any candidate backup for recovery. No backup of server {server} ends \
         before the requested target: choose an earlier target or a backup ID"
    )]
    NoCandidateBackup { server: String },

    /// A recovery target (`--target-time`, `--target-lsn`, `--target-tli`) that cannot be
    /// used; Barman exits 4 here, not 3.
    #[error("{0}")]
    InvalidTarget(String),

    /// A restore destination that holds files already.
    #[error(
        "Destination {} already exists and it is not empty: restore into an empty or \
         missing directory",
        path.display()
    )]
    DestinationNotEmpty { path: PathBuf },

    /// A tarball the backup needs is not in the store.
    #[error(
        "Missing file {base}.* for server {server}: the backup is incomplete or was taken \
         with a compression this tool cannot read"
    )]
    MissingBackupFile { base: String, server: String },

    /// A tar member that would land outside the restore target, or write through a link.
    #[error("refusing to extract '{entry}' from '{key}': {reason}")]
    UnsafeArchive {
        key: String,
        entry: String,
        reason: String,
    },

    /// A feature of Barman's that this tool does not implement.
    #[error("{0}")]
    Unsupported(String),

    /// The user interrupted the command (Barman exits 1 for a Ctrl-C during a restore).
    #[error("{0} was interrupted by the user")]
    Interrupted(&'static str),

    /// An option value that parses but cannot be used. Barman accepts these at parsing and
    /// fails when it builds its client, so this is exit 4, not a usage error.
    #[error("invalid {option} {value}: {fix}")]
    OptionValue {
        option: &'static str,
        value: String,
        fix: &'static str,
    },

    /// The spool directory of wal-restore cannot be used (Barman exits 2 here).
    #[error("cannot use spool directory '{}': {source}", path.display())]
    Spool {
        path: PathBuf,
        source: std::io::Error,
    },

    /// A tarball part whose stream ends before its tar archive does (exit 4, as a corrupt
    /// object): the object was cut, possibly at a member boundary.
    #[error(
        "cannot restore from '{key}': the tar archive {reason}, so the object is truncated or \
         damaged: restore another backup, or put back a whole copy of the object"
    )]
    TruncatedArchive { key: String, reason: &'static str },

    /// Every part was unpacked but what only a whole backup has is not there (exit 1, as a
    /// missing tarball): `global/pg_control` stays under its temporary name.
    #[error(
        "Backup {backup_id} is incomplete: no archive of it holds {missing} (its last data \
         part is missing or it never finished); global/pg_control was not put in place: \
         restore another backup"
    )]
    IncompleteBackup { backup_id: String, missing: String },

    /// A `backup.info` that ends before its last key: empty or cut (Barman exits 4 here).
    #[error(
        "cannot restore from '{key}': it is {reason}, so it does not describe a whole backup: \
         put back a whole copy of it, or restore another backup"
    )]
    IncompleteBackupInfo { key: String, reason: &'static str },

    /// A `backup.info` with a key Barman does not know, a byte-order mark included: Barman
    /// stops every command that reads it with exit 1.
    #[error("cannot read '{key}': {reason}")]
    UnsupportedBackupInfo { key: String, reason: String },

    /// An archived WAL file that must not reach PostgreSQL: it fails its checksum, ends
    /// inside its stream, or decodes to the wrong size.
    #[error(
        "refusing to restore '{key}': {reason}; the archived copy is corrupt or truncated: \
         archive the WAL file again from its server, or put a good copy at that key"
    )]
    WalDamaged { key: String, reason: String },

    /// A download that kept its reader waiting while almost nothing arrived (exit 2, as a
    /// lost connection): see `storage/low_speed.rs`.
    #[error(
        "can't connect to cloud provider: {what}: the download stalled ({received} bytes in \
         {window_secs} s of waiting, under {floor_kib} KiB): check the network, or raise \
         --read-timeout"
    )]
    Stalled {
        /// The destination URL and the key being read.
        what: String,
        received: u64,
        window_secs: u64,
        floor_kib: u64,
    },
}

impl Error {
    /// The exit-code class Barman uses for this failure.
    pub fn class(&self) -> ExitClass {
        match self {
            // A backup that lost the store is a network failure like any other command's.
            Error::BackupFailed { reason, .. } if reason.class() == ExitClass::Network => {
                ExitClass::Network
            }
            Error::BackupFailed { .. } => ExitClass::Operation,
            Error::Input(_) | Error::InvalidWalName(_) => ExitClass::Input,
            Error::WalNotFound { .. }
            | Error::WalConflict { .. }
            | Error::ArchiveNotUsable { .. }
            | Error::ObjectNotFound { .. }
            | Error::BucketCheckFailed { .. }
            | Error::PgConnect { .. }
            | Error::BackupNotFound { .. }
            | Error::NoSuchBackup { .. }
            | Error::UnreadableCatalog { .. }
            | Error::BackupKept { .. }
            | Error::MinimumRedundancy { .. }
            | Error::DeleteFailed { .. }
            | Error::NotKeepable { .. }
            | Error::NoCandidateBackup { .. }
            | Error::DestinationNotEmpty { .. }
            | Error::MissingBackupFile { .. }
            | Error::Interrupted(_)
            | Error::IncompleteBackup { .. }
            | Error::UnsupportedBackupInfo { .. } => ExitClass::Operation,
            Error::Connection { .. } | Error::Spool { .. } => ExitClass::Network,
            Error::InvalidUrl { .. }
            | Error::BucketNotFound { .. }
            | Error::Storage { .. }
            | Error::AccessDenied { .. }
            | Error::Config { .. }
            | Error::Corrupt { .. }
            | Error::Postgres { .. }
            | Error::Io { .. }
            | Error::UnknownBackup { .. }
            | Error::KeepWithoutBackup { .. }
            | Error::AmbiguousBackupName { .. }
            | Error::InvalidTarget(_)
            | Error::UnsafeArchive { .. }
            | Error::Unsupported(_)
            | Error::OptionValue { .. }
            | Error::TruncatedArchive { .. }
            | Error::IncompleteBackupInfo { .. } => ExitClass::General,
            Error::WalDamaged { .. } => ExitClass::StopRecovery,
            Error::Stalled { .. } => ExitClass::Network,
        }
    }

    /// The same failure met by `-t/--test`, where Barman reports a missing bucket with exit 1.
    pub fn during_test(self) -> Error {
        match self {
            Error::BucketNotFound { bucket } => Error::BucketCheckFailed { bucket },
            other => other,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The cause a variant keeps: an `object_store` error, or a sentence where there is none.
pub type Source = Box<dyn std::error::Error + Send + Sync>;

/// The innermost meaningful message of an error chain, on one line, with any server error
/// body cut down to its code and message.
pub(crate) fn one_line(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    without_error_body(&parts.join(": ")).replace(['\n', '\r'], " ")
}

/// `text` with an XML error body (S3's and Azure's `<Error>`) replaced by its `Code` and
/// `Message`: a body can quote the request, credentials included, and is no message for a
/// DBA anyway.
fn without_error_body(text: &str) -> String {
    let Some(start) = text.find("<?xml").or_else(|| text.find("<Error")) else {
        return text.to_string();
    };
    let body = &text[start..];
    let element = |name: &str| {
        let open = format!("<{name}>");
        let from = body.find(&open)? + open.len();
        let to = body[from..].find(&format!("</{name}>"))?;
        Some(body[from..from + to].trim().to_string())
    };
    let summary = match (element("Code"), element("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        (None, Some(message)) => message,
        (None, None) => "(error body not shown)".to_string(),
    };
    format!("{}{summary}", &text[..start])
}
