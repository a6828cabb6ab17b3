//! What each command's manual says beyond its options: exit status, the environment it
//! reads, and examples. Data kept next to the commands so that `--help` (the examples), the
//! man pages (rendered by `tests/it/docs.rs`) and the tests that check them agree.

/// One command's page.
#[derive(Debug)]
pub struct Page {
    /// The program name.
    pub program: &'static str,
    /// Each exit code and when the command returns it.
    pub exit_status: &'static [(u8, &'static str)],
    /// The groups of variables the command reads.
    pub reads: &'static [Group],
    /// What an example does, and the command line.
    pub examples: &'static [(&'static str, &'static str)],
}

/// Who reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Every command, whatever the provider: TLS roots, proxies, the home directory.
    Store,
    /// Every command with `--cloud-provider aws-s3`.
    S3,
    /// Every command with `--cloud-provider azure-blob-storage`.
    Azure,
    /// Every command with `--cloud-provider google-cloud-storage`.
    Gcs,
    /// barman-cloud-backup's connection to PostgreSQL, as libpq reads them.
    Postgres,
    /// Barman's hook scripts (backup and wal-archive), which we recognise and refuse or run.
    Hook,
}

impl Group {
    /// The heading this group has in a page's ENVIRONMENT section.
    pub fn heading(self) -> &'static str {
        match self {
            Group::Store => "Every provider",
            Group::S3 => "aws-s3",
            Group::Azure => "azure-blob-storage",
            Group::Gcs => "google-cloud-storage",
            Group::Postgres => "PostgreSQL connection",
            Group::Hook => "Barman hook scripts",
        }
    }
}

/// Every environment variable the commands read, with its group and meaning. An empty value
/// counts as unset.
pub const VARIABLES: &[(&str, Group, &str)] = &[
    (
        "AWS_CA_BUNDLE",
        Group::Store,
        "A PEM file of extra CA certificates trusted for HTTPS (any provider).",
    ),
    (
        "REQUESTS_CA_BUNDLE",
        Group::Store,
        "The same, read when AWS_CA_BUNDLE is unset.",
    ),
    (
        "SSL_CERT_FILE",
        Group::Store,
        "The system's CA bundle file for HTTPS (OpenSSL's default file when unset).",
    ),
    (
        "SSL_CERT_DIR",
        Group::Store,
        "Directories of CA certificates for HTTPS, tried when the bundle file's roots refuse \
         a server (OpenSSL's default directory when neither is set).",
    ),
    (
        "HTTPS_PROXY",
        Group::Store,
        "A proxy for HTTPS requests (also https_proxy).",
    ),
    (
        "HTTP_PROXY",
        Group::Store,
        "A proxy for plain HTTP requests (also http_proxy).",
    ),
    (
        "ALL_PROXY",
        Group::Store,
        "A proxy for both (also all_proxy).",
    ),
    (
        "NO_PROXY",
        Group::Store,
        "Hosts reached without the proxy (also no_proxy).",
    ),
    (
        "HOME",
        Group::Store,
        "Where ~/.aws/, ~/.config/gcloud/application_default_credentials.json and ~/.pgpass are looked for.",
    ),
    (
        "AWS_ACCESS_KEY_ID",
        Group::S3,
        "Static credentials: the access key ID.",
    ),
    (
        "AWS_SECRET_ACCESS_KEY",
        Group::S3,
        "Static credentials: the secret key (never printed).",
    ),
    (
        "AWS_SESSION_TOKEN",
        Group::S3,
        "Static credentials: the session token of temporary keys.",
    ),
    (
        "AWS_PROFILE",
        Group::S3,
        "The profile of ~/.aws/credentials and ~/.aws/config, when -P/--aws-profile is not given and AWS_ACCESS_KEY_ID is unset.",
    ),
    (
        "AWS_SHARED_CREDENTIALS_FILE",
        Group::S3,
        "The credentials file (default ~/.aws/credentials).",
    ),
    (
        "AWS_CONFIG_FILE",
        Group::S3,
        "The config file (default ~/.aws/config).",
    ),
    (
        "AWS_REGION",
        Group::S3,
        "The region (else AWS_DEFAULT_REGION, the profile's, or us-east-1).",
    ),
    (
        "AWS_DEFAULT_REGION",
        Group::S3,
        "The region, when AWS_REGION is unset.",
    ),
    (
        "AWS_ENDPOINT_URL_S3",
        Group::S3,
        "The S3 endpoint when --endpoint-url is not given.",
    ),
    (
        "AWS_ENDPOINT_URL",
        Group::S3,
        "The same, when AWS_ENDPOINT_URL_S3 is unset.",
    ),
    (
        "AWS_ROLE_ARN",
        Group::S3,
        "Web identity (EKS IRSA): the role to assume.",
    ),
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        Group::S3,
        "Web identity: the token file.",
    ),
    (
        "AWS_ROLE_SESSION_NAME",
        Group::S3,
        "Web identity: the session name.",
    ),
    (
        "AWS_ENDPOINT_URL_STS",
        Group::S3,
        "Web identity: the STS endpoint.",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        Group::S3,
        "Container credentials (ECS).",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        Group::S3,
        "Container credentials (EKS Pod Identity).",
    ),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        Group::S3,
        "Container credentials: the token file.",
    ),
    (
        "AWS_METADATA_ENDPOINT",
        Group::S3,
        "The EC2 instance metadata service (default http://169.254.169.254).",
    ),
    (
        "AWS_IMDSV1_FALLBACK",
        Group::S3,
        "Allow IMDSv1 when IMDSv2 fails.",
    ),
    (
        "AWS_UNSIGNED_PAYLOAD",
        Group::S3,
        "true or false: whether request signatures leave the payload unhashed (default: unhashed over HTTPS only).",
    ),
    (
        "AZURE_STORAGE_CONNECTION_STRING",
        Group::Azure,
        "A connection string (account key or SAS; required for an emulator such as Azurite).",
    ),
    (
        "AZURE_STORAGE_SAS_TOKEN",
        Group::Azure,
        "A SAS token, when there is no connection string.",
    ),
    (
        "AZURE_STORAGE_KEY",
        Group::Azure,
        "The account key of the URL's account, when there is neither.",
    ),
    (
        "AZURE_CLIENT_ID",
        Group::Azure,
        "Service principal or workload identity: the client ID.",
    ),
    (
        "AZURE_TENANT_ID",
        Group::Azure,
        "Service principal or workload identity: the tenant ID.",
    ),
    (
        "AZURE_CLIENT_SECRET",
        Group::Azure,
        "Service principal: the client secret.",
    ),
    (
        "AZURE_FEDERATED_TOKEN_FILE",
        Group::Azure,
        "Workload identity: the token file.",
    ),
    (
        "AZURE_AUTHORITY_HOST",
        Group::Azure,
        "The Microsoft Entra authority (default login.microsoftonline.com).",
    ),
    (
        "GOOGLE_APPLICATION_CREDENTIALS",
        Group::Gcs,
        "A service account key file (else ~/.config/gcloud's application default credentials, else the metadata server).",
    ),
    (
        "STORAGE_EMULATOR_HOST",
        Group::Gcs,
        "An emulator's HOST:PORT or URL, reached without credentials.",
    ),
    (
        "PGHOST",
        Group::Postgres,
        "Host names or socket directories, when -h is not given (default /var/run/postgresql, else /tmp).",
    ),
    (
        "PGPORT",
        Group::Postgres,
        "The port, when -p is not given (default 5432).",
    ),
    (
        "PGUSER",
        Group::Postgres,
        "The role, when -U is not given (default: the login name).",
    ),
    (
        "PGDATABASE",
        Group::Postgres,
        "The database, when -d is not given.",
    ),
    (
        "PGPASSWORD",
        Group::Postgres,
        "The password (prefer ~/.pgpass).",
    ),
    (
        "PGPASSFILE",
        Group::Postgres,
        "The password file (default ~/.pgpass).",
    ),
    (
        "PGCONNECT_TIMEOUT",
        Group::Postgres,
        "Seconds to wait for the connection.",
    ),
    (
        "PGSSLMODE",
        Group::Postgres,
        "disable, allow, prefer (default), require, verify-ca or verify-full, when the connection string sets no sslmode.",
    ),
    (
        "PGSSLROOTCERT",
        Group::Postgres,
        "The CA certificates that verify the server (default ~/.postgresql/root.crt).",
    ),
    (
        "PGSSLCERT",
        Group::Postgres,
        "A client certificate (default ~/.postgresql/postgresql.crt).",
    ),
    (
        "PGSSLKEY",
        Group::Postgres,
        "The client certificate's key (default ~/.postgresql/postgresql.key).",
    ),
    (
        "BARMAN_HOOK",
        Group::Hook,
        "Set by Barman when it runs the command as a hook script.",
    ),
    (
        "BARMAN_PHASE",
        Group::Hook,
        "The hook's phase (pre or post).",
    ),
    (
        "BARMAN_FILE",
        Group::Hook,
        "wal-archive as an archive_script: the WAL file to archive.",
    ),
];

const ALL_PROVIDERS: &[Group] = &[Group::Store, Group::S3, Group::Azure, Group::Gcs];

/// Exit codes every command shares, after its own 0 and 1.
const NETWORK: (u8, &str) = (
    2,
    "The object store could not be reached (Barman exits 4 here except with -t and in \
     check-wal-archive).",
);
const INPUT: (u8, &str) = (3, "Bad command-line input.");
const GENERAL: (u8, &str) = (
    4,
    "Any other error: no credentials, access denied, a missing bucket, a bad URL.",
);

/// Every command's page, in the order of the README.
pub const PAGES: &[Page] = &[
    Page {
        program: "barman-cloud-wal-archive",
        exit_status: &[
            (
                0,
                "The WAL file is archived, or the same content already was.",
            ),
            (
                1,
                "A different file is already archived under this name (left alone), or -t found no bucket.",
            ),
            NETWORK,
            (
                3,
                "Bad command-line input, or a file name that is not a WAL file's.",
            ),
            (
                4,
                "Any other error: a missing WAL file, no credentials, access denied, a missing bucket, a bad URL.",
            ),
        ],
        reads: &[
            Group::Store,
            Group::S3,
            Group::Azure,
            Group::Gcs,
            Group::Hook,
        ],
        examples: &[
            (
                "As PostgreSQL's archive_command, gzip-compressed to S3:",
                "archive_command = 'barman-cloud-wal-archive --gzip s3://bucket/prefix pg %p'",
            ),
            (
                "To a local or NFS directory (created by barman-cloud-check-wal-archive):",
                "archive_command = 'barman-cloud-wal-archive --gzip file:///var/lib/pgarchive pg %p'",
            ),
            (
                "Check the bucket and the credentials:",
                "barman-cloud-wal-archive -t s3://bucket/prefix pg",
            ),
        ],
    },
    Page {
        program: "barman-cloud-wal-restore",
        exit_status: &[
            (0, "The WAL file was written to WAL_DEST."),
            (
                1,
                "The WAL file is not in the archive (PostgreSQL takes this as its end), or -t found no bucket.",
            ),
            (
                2,
                "The object store could not be reached, or the spool directory is unusable.",
            ),
            (
                3,
                "Bad command-line input, or a name that is not a WAL file's.",
            ),
            GENERAL,
            (
                255,
                "The archived WAL file is damaged: PostgreSQL stops recovery instead of ending it there (ours; Barman exits 4).",
            ),
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "As PostgreSQL's restore_command:",
                "restore_command = 'barman-cloud-wal-restore s3://bucket/prefix pg %f %p'",
            ),
            (
                "Prefetching 8 segments ahead into the spool:",
                "restore_command = 'barman-cloud-wal-restore --parallel 8 s3://bucket/prefix pg %f %p'",
            ),
            (
                "One segment by hand:",
                "barman-cloud-wal-restore file:///var/lib/pgarchive pg 000000010000000000000003 /tmp/000000010000000000000003",
            ),
        ],
    },
    Page {
        program: "barman-cloud-check-wal-archive",
        exit_status: &[
            (
                0,
                "The archive is usable: empty, or nothing on or after --timeline (a missing file:// directory is created).",
            ),
            (
                1,
                "The archive is not usable: it holds WAL of another cluster or a later timeline.",
            ),
            NETWORK,
            INPUT,
            (
                4,
                "Any other error, such as a missing cloud bucket (it cannot be created) or no credentials.",
            ),
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "Before a new cluster archives into a path:",
                "barman-cloud-check-wal-archive s3://bucket/prefix pg",
            ),
            (
                "After a promotion to timeline 2:",
                "barman-cloud-check-wal-archive --timeline 2 s3://bucket/prefix pg",
            ),
        ],
    },
    Page {
        program: "barman-cloud-backup",
        exit_status: &[
            (0, "The backup is stored, its backup.info DONE."),
            (
                1,
                "The backup failed once started (stored as FAILED with the reason), was interrupted by SIGINT or SIGTERM, PostgreSQL could not be reached, or -t found no bucket.",
            ),
            NETWORK,
            (
                3,
                "Bad command-line input, a reserved or ID-like --name, a bad tag, or Barman's hook or snapshot mode (not supported).",
            ),
            (
                4,
                "Any other error: an unsupported PostgreSQL version, no credentials, access denied, a bad URL.",
            ),
        ],
        reads: &[
            Group::Store,
            Group::S3,
            Group::Azure,
            Group::Gcs,
            Group::Postgres,
            Group::Hook,
        ],
        examples: &[
            (
                "As the postgres user, over the local socket:",
                "barman-cloud-backup --immediate-checkpoint --gzip -n nightly s3://bucket/prefix pg",
            ),
            (
                "To a directory, from another host, with a conninfo:",
                "barman-cloud-backup --zstd -J 4 -d 'host=db1 user=backup dbname=postgres' file:///var/lib/pgbackup pg",
            ),
            (
                "To an S3-compatible server:",
                "barman-cloud-backup --endpoint-url https://minio.example:9000 s3://bucket/prefix pg",
            ),
        ],
    },
    Page {
        program: "barman-cloud-restore",
        exit_status: &[
            (0, "The backup is restored into RECOVERY_DIR."),
            (
                1,
                "RECOVERY_DIR is not empty, no such backup ID, no candidate backup for the targets, a part of the backup is missing, or SIGINT/SIGTERM.",
            ),
            NETWORK,
            (
                3,
                "Bad command-line input, such as a --tablespace rule without a colon.",
            ),
            (
                4,
                "Any other error: an unknown backup name, a damaged or unsafe archive, snapshot backups, no credentials.",
            ),
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "The latest backup, then start PostgreSQL with a restore_command:",
                "barman-cloud-restore s3://bucket/prefix pg latest /var/lib/postgresql/15/main",
            ),
            (
                "Point-in-time: the backup before that time, recovery stopping at it, archiving off:",
                "barman-cloud-restore --target-time '2026-11-25 10:00:00+00' --write-recovery-conf --disable-archiving s3://bucket/prefix pg auto /srv/pg15",
            ),
            (
                "Moving a tablespace:",
                "barman-cloud-restore --tablespace tbs1:/srv/tbs1 file:///var/lib/pgbackup pg nightly /srv/pg15",
            ),
        ],
    },
    Page {
        program: "barman-cloud-backup-list",
        exit_status: &[
            (0, "The list is printed (an empty catalog too)."),
            (1, "-t found no bucket."),
            NETWORK,
            INPUT,
            GENERAL,
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "The table Barman prints:",
                "barman-cloud-backup-list s3://bucket/prefix pg",
            ),
            (
                "The JSON CloudNativePG reads:",
                "barman-cloud-backup-list --format json file:///var/lib/pgbackup pg",
            ),
        ],
    },
    Page {
        program: "barman-cloud-backup-show",
        exit_status: &[
            (0, "The backup is shown."),
            (1, "No backup has this ID, or -t found no bucket."),
            NETWORK,
            INPUT,
            (4, "Any other error, such as an unknown backup name."),
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "The newest backup:",
                "barman-cloud-backup-show s3://bucket/prefix pg latest",
            ),
            (
                "By name, as JSON:",
                "barman-cloud-backup-show --format json s3://bucket/prefix pg nightly",
            ),
        ],
    },
    Page {
        program: "barman-cloud-backup-delete",
        exit_status: &[
            (0, "Deleted, or the backup does not exist (a warning)."),
            (
                1,
                "Refused (a kept backup, minimum redundancy, an unreadable catalog) or an object could not be deleted.",
            ),
            NETWORK,
            (
                3,
                "Bad command-line input, such as a retention policy that does not parse.",
            ),
            (4, "Any other error, such as an unknown backup name."),
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "One backup, with the WAL only it needed:",
                "barman-cloud-backup-delete -b 20261125T035211 s3://bucket/prefix pg",
            ),
            (
                "What a retention policy would delete:",
                "barman-cloud-backup-delete -r 'RECOVERY WINDOW OF 30 DAYS' -m 2 --dry-run s3://bucket/prefix pg",
            ),
            (
                "Nightly retention:",
                "barman-cloud-backup-delete -r 'REDUNDANCY 7' file:///var/lib/pgbackup pg",
            ),
        ],
    },
    Page {
        program: "barman-cloud-backup-keep",
        exit_status: &[
            (0, "Done; --status prints Keep: full, standalone or nokeep."),
            (
                1,
                "--target on a backup that is not DONE, or -t found no bucket.",
            ),
            NETWORK,
            (
                3,
                "Bad command-line input, such as none of --target, --status, --release.",
            ),
            (4, "Any other error, such as an unknown backup."),
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "Keep a backup and all its WAL out of retention:",
                "barman-cloud-backup-keep --target full s3://bucket/prefix pg nightly",
            ),
            (
                "Its keep status:",
                "barman-cloud-backup-keep --status s3://bucket/prefix pg nightly",
            ),
            (
                "Release it to retention:",
                "barman-cloud-backup-keep --release s3://bucket/prefix pg nightly",
            ),
        ],
    },
    Page {
        program: "barman-cloud-verify",
        exit_status: &[
            (
                0,
                "Every backup checked would restore, and the WAL archive has no gap.",
            ),
            (
                1,
                "Something is missing or damaged (each problem on one line), or -t found no bucket.",
            ),
            NETWORK,
            INPUT,
            GENERAL,
        ],
        reads: ALL_PROVIDERS,
        examples: &[
            (
                "Every backup and the WAL archive:",
                "barman-cloud-verify s3://bucket/prefix pg",
            ),
            (
                "The latest backup, as JSON:",
                "barman-cloud-verify --format json s3://bucket/prefix pg latest",
            ),
            (
                "The WAL archive alone:",
                "barman-cloud-verify --wal-only file:///var/lib/pgarchive pg",
            ),
        ],
    },
];

/// The page of `program`.
///
/// # Panics
/// If `program` has no page: each command names its own, so a test finds a missing one.
pub fn page(program: &str) -> &'static Page {
    PAGES
        .iter()
        .find(|p| p.program == program)
        .unwrap_or_else(|| panic!("no manual page for {program}"))
}

/// The variables `program` reads, in the order of [`VARIABLES`].
pub fn environment(
    program: &str,
) -> impl Iterator<Item = &'static (&'static str, Group, &'static str)> {
    let reads = page(program).reads;
    VARIABLES
        .iter()
        .filter(move |(_, group, _)| reads.contains(group))
}

/// The text after the options in `--help`: the examples, and where the rest is.
pub fn after_help(program: &str) -> String {
    let mut text = String::from("Examples:\n");
    for (what, command) in page(program).examples {
        text.push_str(&format!("  {what}\n      {command}\n"));
    }
    text.push_str(&format!(
        "\nExit status, environment variables and more: man {program}"
    ));
    text
}
