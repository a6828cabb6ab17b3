//! What a DBA reads when something is wrong (issue #17): each message asserted word for word,
//! with Barman's exit code.

use std::process::Command;

use crate::support::{Ran, TestCommand, ours, temp_dir};

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
        ("azure-blob-storage", "s3://bucket/path", accepted.to_string()),
        ("google-cloud-storage", "s3://bucket/path", accepted.to_string()),
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
