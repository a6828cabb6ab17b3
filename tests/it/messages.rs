//! What a DBA reads when something is wrong (issue #17): each message asserted word for word,
//! with Barman's exit code.

use std::process::Command;

use crate::support::{Provider, Ran, Store, TestCommand, ours, temp_dir};

/// The one error line's message, after `ERROR: PROGRAM: `.
fn error_message(ran: &Ran, program: &str) -> String {
    let errors: Vec<&str> = ran
        .stderr()
        .lines()
        .filter(|l| l.contains(" ERROR: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected: {ran:?}");
    let prefix = format!(" ERROR: {program}: ");
    let at = errors[0].find(&prefix).expect("the program names itself");
    errors[0][at + prefix.len()..].to_string()
}

/// A loopback port nothing listens on: bound, then released.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Item 6: PostgreSQL unreachable, named as psql names it (the socket file, or the host and
/// port), with libpq's hint, and Barman's exit code 1.
#[test]
fn an_unreachable_postgres_is_named_as_psql_names_it() {
    let dir = temp_dir();
    let store = format!("file://{}", dir.path().display());
    let sockets = dir.path().join("no-server");
    std::fs::create_dir(&sockets).unwrap();
    let program = "barman-cloud-backup";

    let ran = Command::new(ours(program))
        .args(["-h", sockets.to_str().unwrap(), &store, "pg"])
        .code(1);
    assert_eq!(
        error_message(&ran, program),
        format!(
            "Cannot connect to postgres: connection to server on socket \"{}/.s.PGSQL.5432\" \
             failed: No such file or directory. Is the server running locally and accepting \
             connections on that socket?",
            sockets.display()
        )
    );

    let port = closed_port();
    let ran = Command::new(ours(program))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), &store, "pg"])
        .code(1);
    assert_eq!(
        error_message(&ran, program),
        format!(
            "Cannot connect to postgres: connection to server at \"127.0.0.1\", port {port} \
             failed: Connection refused. Is the server running on that host and accepting \
             TCP/IP connections?"
        )
    );
}

/// Item 7: a destination that is no accepted form lists every form, on one line, whatever
/// the provider asked for; exit 4 as Barman's "Invalid s3 URL address".
#[test]
fn a_bad_destination_lists_every_accepted_form() {
    let accepted = "expected s3://BUCKET[/PATH] (the default --cloud-provider aws-s3), \
         https://ACCOUNT.blob.core.windows.net/CONTAINER[/PATH] or, for an emulator, \
         http://HOST:PORT/ACCOUNT/CONTAINER[/PATH] (--cloud-provider azure-blob-storage), \
         gs://BUCKET[/PATH] or https://console.cloud.google.com/storage/browser/BUCKET[/PATH] \
         (--cloud-provider google-cloud-storage), or file:///ABSOLUTE/PATH (any provider)";
    let program = "barman-cloud-backup-list";
    for (provider, url, reason) in [
        ("aws-s3", "ftp://host/path", accepted.to_string()),
        ("aws-s3", "gs://bucket/path", accepted.to_string()),
        (
            "azure-blob-storage",
            "s3://bucket/path",
            accepted.to_string(),
        ),
        (
            "google-cloud-storage",
            "s3://bucket/path",
            accepted.to_string(),
        ),
        (
            "aws-s3",
            "bucket/path",
            format!("relative URL without a base; {accepted}"),
        ),
    ] {
        let ran = Command::new(ours(program))
            .args(["--cloud-provider", provider, url, "pg"])
            .code(4);
        assert_eq!(
            error_message(&ran, program),
            format!("invalid destination '{url}': {reason}"),
            "{provider} {url}"
        );
    }
}

/// Item 13: an archive without compression only reads the file, and says so.
#[test]
fn an_uncompressed_archive_does_not_say_compress() {
    let dir = temp_dir();
    let store = format!("file://{}", dir.path().display());
    let wal = dir.path().join("000000010000000000000001");
    let program = "barman-cloud-wal-archive";
    let ran = Command::new(ours(program))
        .args([&store, "pg", wal.to_str().unwrap()])
        .code(4);
    assert_eq!(
        error_message(&ran, program),
        format!(
            "cannot read WAL file '{}': No such file or directory (os error 2)",
            wal.display()
        )
    );
    let ran = Command::new(ours(program))
        .args(["--gzip", &store, "pg", wal.to_str().unwrap()])
        .code(4);
    assert_eq!(
        error_message(&ran, program),
        format!(
            "cannot read and compress WAL file '{}': No such file or directory (os error 2)",
            wal.display()
        )
    );
}

/// Our tool with nothing from the test's environment (which carries the emulators'
/// credentials): only `PATH`, and `HOME` in `home` so no real `~/.aws` or `~/.config` leaks in.
fn bare(program: &str, home: &std::path::Path) -> Command {
    let mut cmd = Command::new(ours(program));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home);
    cmd
}

const LIST: &str = "barman-cloud-backup-list";

/// Item 5: with no credentials at all, each provider says so and names every place its
/// client looked, instead of "access denied"; no request reached a store (the URLs name none
/// that exists). S3's instance metadata endpoint is pointed at a closed port, so the test
/// does not depend on what answers at 169.254.169.254; Azure's and GCS's clients take no such
/// override, and the rig's network refuses that address at once.
#[test]
fn no_credentials_name_every_place_looked_in() {
    let home = temp_dir();
    let h = home.path().display();
    let imds = format!("http://127.0.0.1:{}", closed_port());
    let ran = bare(LIST, home.path())
        .env("AWS_METADATA_ENDPOINT", &imds)
        .args(["s3://bucket/prefix", "pg"])
        .code(4);
    assert_eq!(
        error_message(&ran, LIST),
        format!(
            "cannot list 'prefix/pg/base': no credentials found (looked in: AWS_ACCESS_KEY_ID \
             and AWS_SECRET_ACCESS_KEY, profile 'default' in {h}/.aws/credentials and \
             {h}/.aws/config, AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, \
             AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, AWS_CONTAINER_CREDENTIALS_FULL_URI with \
             AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, the EC2 instance metadata service at \
             {imds}): provide credentials in one of them"
        )
    );

    let ran = bare(LIST, home.path())
        .args(["--cloud-provider", "azure-blob-storage"])
        .args([
            "https://account.blob.core.windows.net/container/prefix",
            "pg",
        ])
        .code(4);
    assert_eq!(
        error_message(&ran, LIST),
        "cannot list 'prefix/pg/base': no credentials found (looked in: \
         AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_SAS_TOKEN, AZURE_STORAGE_KEY, \
         AZURE_CLIENT_ID and AZURE_TENANT_ID with AZURE_FEDERATED_TOKEN_FILE or \
         AZURE_CLIENT_SECRET, the managed identity endpoint at http://169.254.169.254): \
         provide credentials in one of them"
    );

    let ran = bare(LIST, home.path())
        .args(["--cloud-provider", "google-cloud-storage"])
        .args(["gs://bucket/prefix", "pg"])
        .code(4);
    assert_eq!(
        error_message(&ran, LIST),
        format!(
            "cannot list 'prefix/pg/base': no credentials found (looked in: \
             GOOGLE_APPLICATION_CREDENTIALS, {h}/.config/gcloud/application_default_credentials.json, \
             the GCE metadata server at http://169.254.169.254): provide credentials in one of them"
        )
    );
}

/// Item 5: the `default` profile of the shared credentials file is one of those places, as
/// in boto3: with it alone, moto is listed.
#[test]
fn the_default_aws_profile_is_read() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let home = temp_dir();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/credentials"),
        "[default]\naws_access_key_id = testing\naws_secret_access_key = testing-secret\n",
    )
    .unwrap();
    bare(LIST, home.path())
        .args(&store.args)
        .args([&store.url, "pg"])
        .ok();
}

/// Item 5: a store that refuses (Azurite, given a wrong account key) is "access denied by the
/// store (403)", and one that cannot be reached is Barman's "can't connect to cloud provider"
/// with exit 2, on every provider (what follows in parentheses is the HTTP client's account,
/// with timings). moto takes any S3 key and the GCS emulator any request,
/// so only Azurite can be made to refuse.
#[test]
fn a_refusal_and_an_unreachable_store_are_told_apart() {
    let Some(store) = Store::new(Provider::Azure) else {
        return;
    };
    let home = temp_dir();
    let (_, connection) = &store.env[0];
    let wrong = connection
        .split(';')
        .map(|part| match part.strip_prefix("AccountKey=") {
            Some(_) => "AccountKey=d3Jvbmcta2V5LXdyb25nLWtleQ==".to_string(),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";");
    let ran = bare(LIST, home.path())
        .env("AZURE_STORAGE_CONNECTION_STRING", &wrong)
        .args(&store.args)
        .args([&store.url, "pg"])
        .code(4);
    assert_eq!(
        error_message(&ran, LIST),
        "cannot list 'prefix/pg/base': access denied by the store (403): check the credentials \
         (AWS_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS, --aws-profile, \
         --azure-credential) and their permissions"
    );

    let port = closed_port();
    let closed = format!("http://127.0.0.1:{port}");
    let azure_conn = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
         AccountKey=d3Jvbmcta2V5LXdyb25nLWtleQ==;BlobEndpoint={closed}/devstoreaccount1;"
    );
    let azure_url = format!("{closed}/devstoreaccount1/container/prefix");
    for (setup, url) in [
        (
            vec![
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing-secret"),
            ],
            "s3://bucket/prefix",
        ),
        (
            vec![("AZURE_STORAGE_CONNECTION_STRING", azure_conn.as_str())],
            azure_url.as_str(),
        ),
        (
            vec![("STORAGE_EMULATOR_HOST", closed.as_str())],
            "gs://bucket/prefix",
        ),
    ] {
        let provider = match url.split(':').next() {
            Some("s3") => "aws-s3",
            Some("gs") => "google-cloud-storage",
            _ => "azure-blob-storage",
        };
        let ran = bare(LIST, home.path())
            .envs(setup)
            .args(["--cloud-provider", provider, "--endpoint-url", &closed])
            .args([url, "pg"])
            .code(2);
        let message = error_message(&ran, LIST);
        assert!(
            message.starts_with(&format!("can't connect to cloud provider: {url} (")),
            "{message}"
        );
    }
}

/// Item 3: at the default verbosity a backup without `--immediate-checkpoint` says that it
/// waits for PostgreSQL's checkpoint and how to hurry it, then ends with one summary line;
/// nothing else is said, and `-q` silences both. The checkpoint is a real spread one (about
/// 3 s here, from `checkpoint_timeout = 30s` and a target of 0.1, over the rows' dirty
/// buffers).
#[test]
fn a_backup_says_it_waits_for_the_checkpoint_and_sums_up() {
    use crate::support::primary::{By, Options, Primary};
    let Some(primary) = Primary::new(
        Provider::File,
        Options {
            conf: "checkpoint_timeout = 30s\ncheckpoint_completion_target = 0.1",
            ..Options::default()
        },
    ) else {
        return;
    };
    primary
        .pg
        .sql("INSERT INTO marker SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g");
    let socket = primary.pg.socket_dir();
    let started = std::time::Instant::now();
    let ran = primary
        .backup_command(By::Us, &primary.store, socket, &[])
        .code(0);
    let took = started.elapsed();
    let said: Vec<&str> = ran
        .stderr()
        .lines()
        .filter_map(|l| l.split_once("] ").map(|(_, rest)| rest))
        .collect();
    assert_eq!(said.len(), 2, "{ran:?}");
    assert_eq!(
        said[0],
        "INFO: Waiting for PostgreSQL's checkpoint before the backup starts (spread over \
         checkpoint_timeout x checkpoint_completion_target): run CHECKPOINT in psql to hurry \
         it, or pass --immediate-checkpoint"
    );
    // "INFO: Backup ID done: 22.7 MiB read, 2.9 MiB stored, in 3.4 s (6.6 MiB/s)"
    let id = &primary.backup_ids()[0];
    let summary = said[1]
        .strip_prefix(&format!("INFO: Backup {id} done: "))
        .unwrap_or_else(|| panic!("{}", said[1]));
    let (read, rest) = summary.split_once(" read, ").expect("read");
    let (stored, rest) = rest.split_once(" stored, in ").expect("stored");
    let (seconds, rate) = rest.split_once(" s (").expect("seconds");
    for size in [read, stored, rate.trim_end_matches("/s)")] {
        let (number, unit) = size.split_once(' ').expect(size);
        assert!(number.parse::<f64>().is_ok(), "{size}");
        assert!(["B", "KiB", "MiB", "GiB"].contains(&unit), "{size}");
    }
    let seconds: f64 = seconds.parse().expect(seconds);
    assert!(
        seconds <= took.as_secs_f64() + 0.1,
        "{seconds} s of {took:?}"
    );
    assert!(read.ends_with("MiB"), "{read}");

    crate::support::next_backup_second();
    let quiet = primary
        .backup_command(By::Us, &primary.store, socket, &["-q"])
        .code(0);
    assert_eq!(quiet.stderr(), "", "-q says nothing");
}
