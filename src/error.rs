//! Library errors and the one place they become Barman's exit codes.
//!
//! Every failure a user can meet is a variant with a meaning (not found, conflict, network,
//! bad input, ...), so the CLI decides the exit code from the variant and never from the text.
//! Barman's classes (`barman/clients/cloud_cli.py`) are 1 operation failed, 2 connection,
//! 3 command-line input, 4 anything else.
//!
//! # Rules
//!
//! - **A new variant** when a caller, a test or the exit code must tell the failure apart
//!   (a different exit class, a different fix for the user, something a caller retries or
//!   skips). A new cause of an existing failure is a new message, not a new variant. New
//!   variants go at the end of the enum and of each match.
//! - **The exit class is decided only in [`Error::class`]**, from the variant (and for a
//!   failed backup from its cause), never from the text.
//! - **A message is one line**: what could not be done, the object in quotes, then what to
//!   do about it, e.g. "cannot restore from 'KEY': ...: restore another backup". It names
//!   the object the user can act on (the key, the path, the option), never a secret: the
//!   logger masks credentials, but a message should not need it.
//! - **Barman's words stay Barman's.** Where Barman prints a sentence that DBAs grep their
//!   logs for, the message starts with it letter for letter, typos included, and our hint
//!   follows after a colon: [`Error::WalNotFound`], [`Error::PgConnect`],
//!   [`Error::BackupNotFound`] ("does not exists"), [`Error::NoSuchBackup`],
//!   [`Error::UnreadableCatalog`], [`Error::BackupKept`], [`Error::MinimumRedundancy`],
//!   [`Error::NotKeepable`], [`Error::AmbiguousBackupName`], [`Error::NoCandidateBackup`],
//!   [`Error::DestinationNotEmpty`] and [`Error::MissingBackupFile`]. Do not reword them.
//! - **Sources are kept**, not flattened into text: a variant that wraps another error holds
//!   it in a `source` field, so a library caller can walk the chain; the message renders the
//!   part a user needs on the same line, and the CLI prints the message once.
//! - The table test at the end of this file pins every variant's message and exit class:
//!   changing either is a decision, made there.

use std::path::PathBuf;

use crate::postgres::InvalidWalName;
use crate::task::TaskFailed;

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
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why, in words that fit after a colon.
        reason: String,
    },

    /// The requested WAL is not in the archive (PostgreSQL treats this as the end of the archive).
    #[error("WAL file {name} for server {server} does not exist")]
    WalNotFound {
        /// The WAL file name.
        name: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// A WAL with this name is already archived with different content.
    #[error(
        "WAL file {name} is already archived as '{key}' with different content; refusing to \
         overwrite it (check that only one server archives to server name '{server}')"
    )]
    WalConflict {
        /// The WAL file name.
        name: String,
        /// The object key.
        key: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// check-wal-archive found WAL files where a new server must find none.
    #[error("WAL archive check failed for server {server}: {reason}")]
    ArchiveNotUsable {
        /// The server name (`SERVER_NAME`).
        server: String,
        /// Why, in words that fit after a colon.
        reason: String,
    },

    /// An object that was expected is not in the store.
    #[error("object '{key}' does not exist")]
    ObjectNotFound {
        /// The object key.
        key: String,
    },

    /// The bucket or container does not exist (an operation needed it: exit 4 as Barman's).
    #[error("bucket '{bucket}' does not exist: create it, or check the destination URL")]
    BucketNotFound {
        /// The bucket or container.
        bucket: String,
    },

    /// `-t/--test` found no bucket (Barman exits 1 here, not 4).
    #[error("bucket '{bucket}' does not exist: create it, or check the destination URL")]
    BucketCheckFailed {
        /// The bucket or container.
        bucket: String,
    },

    /// The object store could not be reached.
    #[error("can't connect to cloud provider: {endpoint} ({})", one_line(&**source))]
    Connection {
        /// The destination URL, without its query string.
        endpoint: String,
        /// The underlying error.
        source: Source,
    },

    /// The object store refused or failed a request.
    #[error("cannot {action} '{key}': {}", one_line(&**source))]
    Storage {
        /// What was being done, as a verb phrase ("read", "upload").
        action: &'static str,
        /// The object key.
        key: String,
        /// The underlying error.
        source: Source,
    },

    /// The store refused our credentials or their permissions.
    #[error(
        "cannot {action} '{key}': access denied by the store ({status}): check the credentials \
         (AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS, --aws-profile, \
         --azure-credential) and their permissions"
    )]
    AccessDenied {
        /// What was being done, as a verb phrase ("read", "upload").
        action: &'static str,
        /// The object key.
        key: String,
        /// The HTTP status the store answered, 401 or 403.
        status: u16,
    },

    /// The store was configured with something it cannot use.
    #[error("cannot configure the {provider} client: {source}")]
    Config {
        /// The cloud provider.
        provider: &'static str,
        /// The underlying error.
        source: Source,
    },

    /// A stored object could not be decoded.
    #[error("cannot decompress '{key}': {source}; the object is corrupt or has the wrong suffix")]
    Corrupt {
        /// The object key.
        key: String,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A local file operation failed.
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        /// What was being done, as a verb phrase ("read", "upload").
        action: &'static str,
        /// The local path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A backup started and then failed; its `backup.info` says FAILED.
    #[error("backup {backup_id} failed while {phase}: {reason}")]
    BackupFailed {
        /// The backup ID.
        backup_id: String,
        /// What the backup was doing, as a gerund phrase ("uploading data").
        phase: &'static str,
        /// What made it fail.
        reason: Box<Error>,
    },

    /// PostgreSQL could not be reached (Barman exits 1 here).
    #[error("Cannot connect to postgres: {source}")]
    PgConnect {
        /// The underlying error.
        source: PgFailure,
    },

    /// A PostgreSQL query failed, or answered what we cannot use.
    #[error("cannot {action} on PostgreSQL: {source}")]
    Postgres {
        /// What was being done, as a verb phrase ("read", "upload").
        action: &'static str,
        /// The underlying error.
        source: PgFailure,
    },
    /// An ID-shaped backup reference with no `backup.info` behind it (Barman's wording, typo
    /// included, so log watchers keep matching).
    #[error(
        "Backup {id} for server {server} does not exists: list the backups with \
         barman-cloud-backup-list"
    )]
    BackupNotFound {
        /// The backup ID.
        id: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// A backup shown by ID that has no `backup.info` (Barman's show wording).
    #[error(
        "Backup {id} for server {server} does not exist: list the backups with \
         barman-cloud-backup-list"
    )]
    NoSuchBackup {
        /// The backup ID.
        id: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// Deletion refuses to run over a catalog with holes in it.
    #[error(
        "Cannot read the following backups: {}: unsafe to proceed with deletion due to \
         failure reading backup catalog; repair or remove their backup.info",
        ids.join(", ")
    )]
    UnreadableCatalog {
        /// The backup IDs concerned.
        ids: Vec<String>,
    },

    /// `backup-delete -b` of a backup with a keep annotation.
    #[error(
        "Skipping delete of backup {id} for server {server} as it has a current keep \
         request: release it with barman-cloud-backup-keep --release and try again"
    )]
    BackupKept {
        /// The backup ID.
        id: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// `backup-delete -b` would leave fewer backups than `--minimum-redundancy`.
    #[error(
        "Skipping delete of backup {id} for server {server} due to minimum redundancy \
         requirements (minimum redundancy = {minimum}, current redundancy = {current}): \
         lower -m or take another backup first"
    )]
    MinimumRedundancy {
        /// The backup ID.
        id: String,
        /// The server name (`SERVER_NAME`).
        server: String,
        /// The `--minimum-redundancy` asked for.
        minimum: u32,
        /// How many DONE backups there are.
        current: usize,
    },

    /// A backup's objects could not all be deleted; its `backup.info` is left so that the
    /// deletion can be retried.
    #[error("Could not delete backup {id}: {reason}; run the deletion again")]
    DeleteFailed {
        /// The backup ID.
        id: String,
        /// What made it fail.
        reason: Box<Error>,
    },

    /// `backup-keep --target` of a backup that is not DONE.
    #[error(
        "Cannot add keep to backup {id} because it has status {status}. Only backups with \
         status DONE can be kept."
    )]
    NotKeepable {
        /// The backup ID.
        id: String,
        /// Its status in `backup.info`.
        status: String,
    },

    /// `backup-keep --target` of an ID with no `backup.info` (Barman exits 4 here).
    #[error(
        "Cannot add keep to backup {id} of server {server}: it has no backup.info; list the \
         backups with barman-cloud-backup-list"
    )]
    KeepWithoutBackup {
        /// The backup ID.
        id: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// A backup reference that is neither an ID, a shortcut nor a known name.
    #[error(
        "Unknown backup '{reference}' for server '{server}': use a backup ID, a name given \
         with -n, or latest, oldest, last-failed"
    )]
    UnknownBackup {
        /// The reference as given.
        reference: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// A backup name that several backups carry.
    #[error(
        "Multiple backups found matching name '{name}' (try using backup ID instead): {}",
        ids.join(" ")
    )]
    AmbiguousBackupName {
        /// The WAL file name.
        name: String,
        /// The backup IDs concerned.
        ids: Vec<String>,
    },

    /// `auto` found no backup that satisfies the recovery targets.
    #[error(
        "Cannot find any candidate backup for recovery. No backup of server {server} ends \
         before the requested target: choose an earlier target or a backup ID"
    )]
    NoCandidateBackup {
        /// The server name (`SERVER_NAME`).
        server: String,
    },

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
    DestinationNotEmpty {
        /// The local path.
        path: PathBuf,
    },

    /// A tarball the backup needs is not in the store.
    #[error(
        "Missing file {base}.* for server {server}: the backup is incomplete or was taken \
         with a compression this tool cannot read"
    )]
    MissingBackupFile {
        /// The tarball name without suffix (`data`, a tablespace OID).
        base: String,
        /// The server name (`SERVER_NAME`).
        server: String,
    },

    /// A tar member that would land outside the restore target, or write through a link.
    #[error("refusing to extract '{entry}' from '{key}': {reason}")]
    UnsafeArchive {
        /// The object key.
        key: String,
        /// The tar member.
        entry: String,
        /// Why, in words that fit after a colon.
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
        /// The option, as spelled on the command line.
        option: &'static str,
        /// The value given.
        value: String,
        /// What to give instead.
        fix: &'static str,
    },

    /// The spool directory of wal-restore cannot be used (Barman exits 2 here).
    #[error("cannot use spool directory '{}': {source}", path.display())]
    Spool {
        /// The local path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// A tarball part whose stream ends before its tar archive does (exit 4, as a corrupt
    /// object): the object was cut, possibly at a member boundary.
    #[error(
        "cannot restore from '{key}': the tar archive {reason}, so the object is truncated or \
         damaged: restore another backup, or put back a whole copy of the object"
    )]
    TruncatedArchive {
        /// The object key.
        key: String,
        /// Why, in words that fit after a colon.
        reason: &'static str,
    },

    /// Every part was unpacked but what only a whole backup has is not there (exit 1, as a
    /// missing tarball): `global/pg_control` stays under its temporary name.
    #[error(
        "Backup {backup_id} is incomplete: no archive of it holds {missing} (its last data \
         part is missing or it never finished); global/pg_control was not put in place: \
         restore another backup"
    )]
    IncompleteBackup {
        /// The backup ID.
        backup_id: String,
        /// What no archive holds (`backup_label`, `global/pg_control`).
        missing: String,
    },

    /// A `backup.info` that ends before its last key: empty or cut (Barman exits 4 here).
    #[error(
        "cannot restore from '{key}': it is {reason}, so it does not describe a whole backup: \
         put back a whole copy of it, or restore another backup"
    )]
    IncompleteBackupInfo {
        /// The object key.
        key: String,
        /// Why, in words that fit after a colon.
        reason: &'static str,
    },

    /// A `backup.info` with a key Barman does not know, a byte-order mark included: Barman
    /// stops every command that reads it with exit 1.
    #[error("cannot read '{key}': {reason}")]
    UnsupportedBackupInfo {
        /// The object key.
        key: String,
        /// Why, in words that fit after a colon.
        reason: String,
    },

    /// An archived WAL file that must not reach PostgreSQL: it fails its checksum, ends
    /// inside its stream, or decodes to the wrong size.
    #[error(
        "refusing to restore '{key}': {reason}; the archived copy is corrupt or truncated: \
         archive the WAL file again from its server, or put a good copy at that key"
    )]
    WalDamaged {
        /// The object key.
        key: String,
        /// Why, in words that fit after a colon.
        reason: String,
    },

    /// Blocking work (a decoder, a file read, tar) that panicked or was cancelled.
    #[error(transparent)]
    TaskFailed(#[from] TaskFailed),

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
        /// Bytes received in the window.
        received: u64,
        /// The window, in seconds of waiting.
        window_secs: u64,
        /// The speed floor, in KiB per window.
        floor_kib: u64,
    },

    /// A file of a backup differs from what its `backup_manifest` lists (barman-cloud-verify).
    #[error("backup {backup_id} does not match its backup_manifest: {detail}")]
    ManifestMismatch {
        /// The backup ID.
        backup_id: String,
        /// Which file and how, naming the part.
        detail: String,
    },

    /// barman-cloud-verify found objects missing or damaged, each printed on a line of its
    /// own before this one.
    #[error(
        "verification of server {server} found {count} problem(s), each named above: put \
         back good copies of those objects, or take a new backup"
    )]
    VerifyFailed {
        /// The server name (`SERVER_NAME`).
        server: String,
        /// How many problems.
        count: usize,
    },

    /// No credentials were configured and no metadata service gave any, so no request
    /// reached the store (exit 4, as Barman's for boto3's `NoCredentialsError`).
    #[error(
        "cannot {action} '{key}': no credentials found (looked in: {looked_in}): provide \
         credentials in one of them"
    )]
    NoCredentials {
        /// What was being done, as a verb phrase ("read", "upload").
        action: &'static str,
        /// The object key.
        key: String,
        /// Every source consulted, in order.
        looked_in: String,
    },
}

/// What went wrong talking to PostgreSQL.
#[derive(Debug)]
pub enum PgFailure {
    /// The client library's error: the server's message, or why the connection failed.
    Client(tokio_postgres::Error),
    /// An answer we cannot use, e.g. a server too old.
    Unexpected(String),
    /// No server answered where we tried, worded as psql words it.
    Unreachable {
        /// `on socket "/run/postgresql/.s.PGSQL.5432"` or `at "db", port 5432`.
        target: String,
        /// The system's reason, e.g. "Connection refused".
        reason: String,
        /// libpq's hint for that kind of connection.
        hint: &'static str,
        /// The client library's error.
        source: tokio_postgres::Error,
    },
}

impl std::fmt::Display for PgFailure {
    /// One line: the server's own message when it sent one, else the whole cause chain
    /// (tokio-postgres keeps the useful part, "connection refused", in the source).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgFailure::Client(e) => match e.as_db_error() {
                Some(db) => f.write_str(db.message()),
                None => f.write_str(&one_line(e)),
            },
            PgFailure::Unexpected(message) => f.write_str(message),
            // psql puts the hint on a second line; ours are one line.
            PgFailure::Unreachable {
                target,
                reason,
                hint,
                ..
            } => write!(f, "connection to server {target} failed: {reason}. {hint}"),
        }
    }
}

impl std::error::Error for PgFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PgFailure::Client(e) | PgFailure::Unreachable { source: e, .. } => Some(e),
            PgFailure::Unexpected(_) => None,
        }
    }
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
            | Error::IncompleteBackupInfo { .. }
            | Error::TaskFailed(_) => ExitClass::General,
            Error::WalDamaged { .. } => ExitClass::StopRecovery,
            Error::Stalled { .. } => ExitClass::Network,
            Error::VerifyFailed { .. } | Error::ManifestMismatch { .. } => ExitClass::Operation,
            Error::NoCredentials { .. } => ExitClass::General,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::io;

    use super::*;

    const ID: &str = "20261201T000000";

    fn io_error(kind: io::ErrorKind, text: &str) -> io::Error {
        io::Error::new(kind, text.to_string())
    }

    /// Every variant with the message a user reads and the exit class it gives.
    fn table() -> Vec<(Error, &'static str, ExitClass)> {
        use ExitClass::*;
        let server = || "pg".to_string();
        let key = || "pg/base/k".to_string();
        vec![
            (Error::Input("bad input".into()), "bad input", Input),
            (
                Error::InvalidWalName(InvalidWalName { name: "x".into() }),
                "x is an invalid name for a WAL file: expected a 24-hex-digit segment, \
                 <segment>.partial, <segment>.XXXXXXXX.backup or XXXXXXXX.history",
                Input,
            ),
            (
                Error::InvalidUrl {
                    url: "s3:/x".into(),
                    reason: "no bucket".into(),
                },
                "invalid destination 's3:/x': no bucket",
                General,
            ),
            (
                Error::WalNotFound {
                    name: "000000010000000000000001".into(),
                    server: server(),
                },
                "WAL file 000000010000000000000001 for server pg does not exist",
                Operation,
            ),
            (
                Error::WalConflict {
                    name: "000000010000000000000001".into(),
                    key: key(),
                    server: server(),
                },
                "WAL file 000000010000000000000001 is already archived as 'pg/base/k' with \
                 different content; refusing to overwrite it (check that only one server \
                 archives to server name 'pg')",
                Operation,
            ),
            (
                Error::ArchiveNotUsable {
                    server: server(),
                    reason: "WAL files found".into(),
                },
                "WAL archive check failed for server pg: WAL files found",
                Operation,
            ),
            (
                Error::ObjectNotFound { key: key() },
                "object 'pg/base/k' does not exist",
                Operation,
            ),
            (
                Error::BucketNotFound { bucket: "b".into() },
                "bucket 'b' does not exist: create it, or check the destination URL",
                General,
            ),
            (
                Error::BucketCheckFailed { bucket: "b".into() },
                "bucket 'b' does not exist: create it, or check the destination URL",
                Operation,
            ),
            (
                Error::Connection {
                    endpoint: "s3://bucket/pg".into(),
                    source: "connection refused".into(),
                },
                "can't connect to cloud provider: s3://bucket/pg (connection refused)",
                Network,
            ),
            (
                Error::Storage {
                    action: "read",
                    key: key(),
                    source: "HTTP 500".into(),
                },
                "cannot read 'pg/base/k': HTTP 500",
                General,
            ),
            (
                Error::AccessDenied {
                    action: "read",
                    key: key(),
                    status: 403,
                },
                "cannot read 'pg/base/k': access denied by the store (403): check the \
                 credentials (AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS, \
                 --aws-profile, --azure-credential) and their permissions",
                General,
            ),
            (
                Error::Config {
                    provider: "S3",
                    source: "bad region".into(),
                },
                "cannot configure the S3 client: bad region",
                General,
            ),
            (
                Error::Corrupt {
                    key: key(),
                    source: io_error(io::ErrorKind::InvalidData, "bad block"),
                },
                "cannot decompress 'pg/base/k': bad block; the object is corrupt or has the \
                 wrong suffix",
                General,
            ),
            (
                Error::Io {
                    action: "read",
                    path: "/x".into(),
                    source: io_error(io::ErrorKind::NotFound, "gone"),
                },
                "cannot read '/x': gone",
                General,
            ),
            (
                Error::BackupFailed {
                    backup_id: ID.into(),
                    phase: "uploading data",
                    reason: Box::new(Error::Input("why".into())),
                },
                "backup 20261201T000000 failed while uploading data: why",
                Operation,
            ),
            (
                Error::PgConnect {
                    source: PgFailure::Unexpected("refused".into()),
                },
                "Cannot connect to postgres: refused",
                Operation,
            ),
            (
                Error::Postgres {
                    action: "take a backup",
                    source: PgFailure::Unexpected("too old".into()),
                },
                "cannot take a backup on PostgreSQL: too old",
                General,
            ),
            (
                Error::BackupNotFound {
                    id: ID.into(),
                    server: server(),
                },
                "Backup 20261201T000000 for server pg does not exists: list the backups with \
                 barman-cloud-backup-list",
                Operation,
            ),
            (
                Error::NoSuchBackup {
                    id: ID.into(),
                    server: server(),
                },
                "Backup 20261201T000000 for server pg does not exist: list the backups with \
                 barman-cloud-backup-list",
                Operation,
            ),
            (
                Error::UnreadableCatalog {
                    ids: vec!["a".into(), "b".into()],
                },
                "Cannot read the following backups: a, b: unsafe to proceed with deletion due \
                 to failure reading backup catalog; repair or remove their backup.info",
                Operation,
            ),
            (
                Error::BackupKept {
                    id: ID.into(),
                    server: server(),
                },
                "Skipping delete of backup 20261201T000000 for server pg as it has a current \
                 keep request: release it with barman-cloud-backup-keep --release and try again",
                Operation,
            ),
            (
                Error::MinimumRedundancy {
                    id: ID.into(),
                    server: server(),
                    minimum: 2,
                    current: 1,
                },
                "Skipping delete of backup 20261201T000000 for server pg due to minimum \
                 redundancy requirements (minimum redundancy = 2, current redundancy = 1): \
                 lower -m or take another backup first",
                Operation,
            ),
            (
                Error::DeleteFailed {
                    id: ID.into(),
                    reason: Box::new(Error::ObjectNotFound { key: key() }),
                },
                "Could not delete backup 20261201T000000: object 'pg/base/k' does not exist; \
                 run the deletion again",
                Operation,
            ),
            (
                Error::NotKeepable {
                    id: ID.into(),
                    status: "FAILED".into(),
                },
                "Cannot add keep to backup 20261201T000000 because it has status FAILED. Only \
                 backups with status DONE can be kept.",
                Operation,
            ),
            (
                Error::KeepWithoutBackup {
                    id: ID.into(),
                    server: server(),
                },
                "Cannot add keep to backup 20261201T000000 of server pg: it has no \
                 backup.info; list the backups with barman-cloud-backup-list",
                General,
            ),
            (
                Error::UnknownBackup {
                    reference: "x".into(),
                    server: server(),
                },
                "Unknown backup 'x' for server 'pg': use a backup ID, a name given with -n, or \
                 latest, oldest, last-failed",
                General,
            ),
            (
                Error::AmbiguousBackupName {
                    name: "n".into(),
                    ids: vec!["a".into(), "b".into()],
                },
                "Multiple backups found matching name 'n' (try using backup ID instead): a b",
                General,
            ),
            (
                Error::NoCandidateBackup { server: server() },
                "Cannot find any candidate backup for recovery. No backup of server pg ends \
                 before the requested target: choose an earlier target or a backup ID",
                Operation,
            ),
            (
                Error::InvalidTarget("bad target".into()),
                "bad target",
                General,
            ),
            (
                Error::DestinationNotEmpty { path: "/d".into() },
                "Destination /d already exists and it is not empty: restore into an empty or \
                 missing directory",
                Operation,
            ),
            (
                Error::MissingBackupFile {
                    base: "data".into(),
                    server: server(),
                },
                "Missing file data.* for server pg: the backup is incomplete or was taken with \
                 a compression this tool cannot read",
                Operation,
            ),
            (
                Error::UnsafeArchive {
                    key: key(),
                    entry: "../x".into(),
                    reason: "it leaves the target".into(),
                },
                "refusing to extract '../x' from 'pg/base/k': it leaves the target",
                General,
            ),
            (Error::Unsupported("no".into()), "no", General),
            (
                Error::Interrupted("the restore"),
                "the restore was interrupted by the user",
                Operation,
            ),
            (
                Error::OptionValue {
                    option: "--read-timeout",
                    value: "0".into(),
                    fix: "give a positive number of seconds",
                },
                "invalid --read-timeout 0: give a positive number of seconds",
                General,
            ),
            (
                Error::Spool {
                    path: "/s".into(),
                    source: io_error(io::ErrorKind::PermissionDenied, "denied"),
                },
                "cannot use spool directory '/s': denied",
                Network,
            ),
            (
                Error::TruncatedArchive {
                    key: key(),
                    reason: "ends early",
                },
                "cannot restore from 'pg/base/k': the tar archive ends early, so the object is \
                 truncated or damaged: restore another backup, or put back a whole copy of the \
                 object",
                General,
            ),
            (
                Error::IncompleteBackup {
                    backup_id: ID.into(),
                    missing: "backup_label".into(),
                },
                "Backup 20261201T000000 is incomplete: no archive of it holds backup_label (its \
                 last data part is missing or it never finished); global/pg_control was not \
                 put in place: restore another backup",
                Operation,
            ),
            (
                Error::IncompleteBackupInfo {
                    key: key(),
                    reason: "empty",
                },
                "cannot restore from 'pg/base/k': it is empty, so it does not describe a whole \
                 backup: put back a whole copy of it, or restore another backup",
                General,
            ),
            (
                Error::UnsupportedBackupInfo {
                    key: key(),
                    reason: "unknown key 'x'".into(),
                },
                "cannot read 'pg/base/k': unknown key 'x'",
                Operation,
            ),
            (
                Error::WalDamaged {
                    key: key(),
                    reason: "checksum mismatch".into(),
                },
                "refusing to restore 'pg/base/k': checksum mismatch; the archived copy is \
                 corrupt or truncated: archive the WAL file again from its server, or put a \
                 good copy at that key",
                StopRecovery,
            ),
            (
                Error::TaskFailed(TaskFailed {
                    what: "decoding",
                    reason: "panicked".into(),
                }),
                "decoding stopped unexpectedly (panicked); please report this as a bug",
                General,
            ),
            (
                Error::Stalled {
                    what: "s3://bucket/pg/wals/x".into(),
                    received: 10,
                    window_secs: 60,
                    floor_kib: 64,
                },
                "can't connect to cloud provider: s3://bucket/pg/wals/x: the download stalled \
                 (10 bytes in 60 s of waiting, under 64 KiB): check the network, or raise \
                 --read-timeout",
                Network,
            ),
            (
                Error::ManifestMismatch {
                    backup_id: ID.into(),
                    detail: "'base/1/1259' in 'k' has 1 bytes, its backup_manifest says 2".into(),
                },
                "backup 20261201T000000 does not match its backup_manifest: 'base/1/1259' in \
                 'k' has 1 bytes, its backup_manifest says 2",
                Operation,
            ),
            (
                Error::VerifyFailed {
                    server: "pg".into(),
                    count: 2,
                },
                "verification of server pg found 2 problem(s), each named above: put back good \
                 copies of those objects, or take a new backup",
                Operation,
            ),
            (
                Error::NoCredentials {
                    action: "list",
                    key: key(),
                    looked_in: "AWS_ACCESS_KEY_ID".into(),
                },
                "cannot list 'pg/base/k': no credentials found (looked in: AWS_ACCESS_KEY_ID): \
                 provide credentials in one of them",
                General,
            ),
        ]
    }

    /// The variant names declared in `pub enum Error`, read from this file.
    fn declared_variants() -> BTreeSet<String> {
        let source = include_str!("error.rs");
        let body = &source[source.find("pub enum Error {").unwrap()..];
        let body = &body[..body.find("\n}\n").unwrap()];
        body.lines()
            .filter_map(|line| line.strip_prefix("    "))
            .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
            .map(|line| variant_name(line).to_string())
            .collect()
    }

    fn variant_name(text: &str) -> &str {
        let end = text
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(text.len());
        &text[..end]
    }

    #[test]
    fn every_variant_has_its_message_and_exit_class() {
        let mut seen = BTreeSet::new();
        for (error, message, class) in table() {
            let name = variant_name(&format!("{error:?}")).to_string();
            assert_eq!(error.to_string(), message, "message of {name}");
            assert!(!message.contains('\n'), "{name}: a message is one line");
            assert_eq!(error.class(), class, "exit class of {name}");
            seen.insert(name);
        }
        assert_eq!(
            seen,
            declared_variants(),
            "add a row for each new variant of Error to table()"
        );
    }

    #[test]
    fn a_backup_that_lost_the_store_exits_as_a_network_failure() {
        let failed = Error::BackupFailed {
            backup_id: ID.into(),
            phase: "uploading data",
            reason: Box::new(Error::Connection {
                endpoint: "s3://bucket/pg".into(),
                source: "timed out".into(),
            }),
        };
        assert_eq!(failed.class(), ExitClass::Network);
    }
}
