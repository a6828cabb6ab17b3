//! Command-line behaviour users and CloudNativePG rely on: Barman's flags, argument orders and
//! usage-error exit code.

use std::process::Command;

use crate::support::{
    PROGRAMS, Provider, Store, TestCommand, barman, ours, temp_dir, wal_like_bytes,
};

#[test]
fn usage_errors_exit_3_and_help_is_only_long() {
    for (program, _) in PROGRAMS {
        Command::new(ours(program)).arg("--no-such-flag").code(3);
        let help = Command::new(ours(program)).arg("--help").ok();
        assert!(
            help.contains("--cloud-provider"),
            "{program} --help: no --cloud-provider in\n{help}"
        );
        let version = Command::new(ours(program)).arg("-V").ran();
        assert!(
            version.stdout().contains("3.19.1"),
            "{program} -V: {version:?}"
        );
    }
}

/// The argument vectors CloudNativePG builds (cnpg-integration.md), including options after
/// the positionals and `--tags` followed by another option.
#[test]
fn cloudnative_pg_argument_vectors() {
    let store = Store::new(Provider::File).unwrap();
    let dir = temp_dir();
    let wal = dir.path().join("000000010000000000000001");
    std::fs::write(&wal, wal_like_bytes(1 << 20, 1)).unwrap();
    Command::new(ours("barman-cloud-wal-archive"))
        .args([
            "--gzip",
            "--tags",
            "env,test",
            "team,db",
            "--history-tags",
            "kind,history",
            "--cloud-provider",
            "aws-s3",
            &store.url,
            "cluster",
            wal.to_str().unwrap(),
        ])
        .ok();
    let dest = dir.path().join("RECOVERYXLOG");
    Command::new(ours("barman-cloud-wal-restore"))
        .args([
            "--cloud-provider",
            "aws-s3",
            &store.url,
            "cluster",
            "--no-partial",
            "000000010000000000000001",
            dest.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(std::fs::read(dest).unwrap(), wal_like_bytes(1 << 20, 1));
    Command::new(ours("barman-cloud-check-wal-archive"))
        .args(["--cloud-provider", "aws-s3", &store.url, "other"])
        .ok();
}

#[test]
fn bad_tags_and_levels_are_usage_errors() {
    let store = Store::new(Provider::File).unwrap();
    let dir = temp_dir();
    let wal = dir.path().join("000000010000000000000001");
    std::fs::write(&wal, b"x").unwrap();
    for args in [
        vec!["--tag", "novalue"],
        vec!["--compression-level", "extreme", "--gzip"],
        vec!["--gzip", "--xz"],
    ] {
        Command::new(ours("barman-cloud-wal-archive"))
            .args(&args)
            .args([&store.url, "pg", wal.to_str().unwrap()])
            .code(3);
    }
}

/// Errors are one line on stderr, with the program name, and never carry a credential.
#[test]
fn errors_are_one_line_without_secrets() {
    let secret = "SuperSecretValue123456";
    let out = Command::new(ours("barman-cloud-wal-restore"))
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args([
            "-vv",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "s3://b/p",
            "pg",
            "000000010000000000000001",
            "/tmp/x",
        ])
        .failed();
    let stderr = out.stderr();
    assert!(!stderr.contains(secret), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains("barman-cloud-wal-restore: "), "{stderr}");
}

/// The catalog commands as CloudNativePG runs them, on an empty store, and their
/// one-of-these options: missing or doubled, a usage error.
#[test]
fn catalog_commands_argument_vectors() {
    let store = Store::new(Provider::File).unwrap();
    let list = Command::new(ours("barman-cloud-backup-list"))
        .args([
            "--format",
            "json",
            "--cloud-provider",
            "aws-s3",
            &store.url,
            "cluster",
        ])
        .ok();
    assert_eq!(list, "{\"backups_list\": []}\n");
    Command::new(ours("barman-cloud-backup-delete"))
        .args([
            "--retention-policy",
            "RECOVERY WINDOW OF 30 DAYS",
            "--cloud-provider",
            "aws-s3",
            &store.url,
            "cluster",
        ])
        .ok();
    // A negative batch size is clamped, as in Barman.
    Command::new(ours("barman-cloud-backup-delete"))
        .args([
            &store.url,
            "cluster",
            "--batch-size",
            "-5",
            "-r",
            "REDUNDANCY 2",
        ])
        .ok();
    for (program, args) in [
        ("barman-cloud-backup-delete", vec![]),
        (
            "barman-cloud-backup-delete",
            vec!["-b", "latest", "-r", "REDUNDANCY 1"],
        ),
        (
            "barman-cloud-backup-delete",
            vec!["-r", "REDUNDANCY 1", "-m", "-1"],
        ),
        ("barman-cloud-backup-keep", vec!["20261125T035049"]),
        (
            "barman-cloud-backup-keep",
            vec!["20261125T035049", "-r", "-s"],
        ),
        (
            "barman-cloud-backup-keep",
            vec!["20261125T035049", "--target", "forever"],
        ),
        ("barman-cloud-backup-show", vec![]),
    ] {
        Command::new(ours(program))
            .args([&store.url, "cluster"])
            .args(&args)
            .code(3);
    }
}

/// `--log-format json`: every log line, the final error included, is one JSON object; and
/// `--version` names the Barman release we follow.
#[test]
fn json_log_lines_and_version() {
    let dir = temp_dir();
    let url = format!("file://{}/missing", dir.path().display());
    let out = Command::new(ours("barman-cloud-wal-restore"))
        .args([
            "--log-format",
            "json",
            &url,
            "pg",
            "000000010000000000000001",
            "/tmp/never-written",
        ])
        .code(4);
    let stderr = out.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["level"], "ERROR");
    let message = line["message"].as_str().unwrap();
    assert!(
        message.starts_with("barman-cloud-wal-restore: bucket"),
        "{message}"
    );
    assert!(line["pid"].is_u64() && line["time"].is_string());

    let version = Command::new(ours("barman-cloud-backup"))
        .arg("--version")
        .ok();
    assert!(
        version.contains("compatible with Barman 3.19.1"),
        "{version}"
    );
}

/// Numbers Barman's `type=int` options accept parse the same here (issue #14): a negative
/// compression level is clamped and `--parallel` at or below zero turns prefetching off
/// (exit 0), a timeout that is not positive fails when the client is built (exit 4, not a
/// usage error), and an empty retention policy deletes nothing.
#[test]
fn numbers_barman_accepts_parse_the_same() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let dir = temp_dir();
    let wal = dir.path().join("000000010000000000000001");
    std::fs::write(&wal, wal_like_bytes(1 << 20, 3)).unwrap();
    let ours_with = |program: &str, flags: &[&str], rest: &[&str]| {
        store
            .command(ours(program))
            .args(flags)
            .args([&store.url, "pg"])
            .args(rest)
            .ran()
    };
    ours_with(
        "barman-cloud-wal-archive",
        &["--gzip", "--compression-level", "-5"],
        &[wal.to_str().unwrap()],
    )
    .code(0);
    let dest = dir.path().join("RECOVERYXLOG");
    ours_with(
        "barman-cloud-wal-restore",
        &["--parallel", "-1"],
        &["000000010000000000000001", dest.to_str().unwrap()],
    )
    .code(0);
    assert_eq!(std::fs::read(&dest).unwrap(), wal_like_bytes(1 << 20, 3));
    for timeout in ["-5", "0"] {
        let out = ours_with(
            "barman-cloud-wal-restore",
            &["--read-timeout", timeout],
            &["000000010000000000000001", dest.to_str().unwrap()],
        )
        .code(4);
        let stderr = out.stderr();
        assert!(
            stderr.contains(&format!(
                "invalid --read-timeout {timeout}: use a number of seconds"
            )),
            "{stderr}"
        );
    }
    ours_with("barman-cloud-backup-delete", &["-r", ""], &[]).code(0);
}

/// A backup whose store refuses connections exits 2 as every other command does (issue #14),
/// and asks PostgreSQL for nothing: no backup is started, no checkpoint requested.
#[test]
fn backup_to_a_refused_endpoint_exits_2() {
    use crate::support::pg::{Pg, as_postgres};
    if crate::support::required("BCRS_PG_BIN").is_none() {
        return;
    }
    let dir = temp_dir();
    let mut pg = Pg::init(&dir.path().join("primary"));
    pg.start();
    // Nothing listens on port 1 of loopback.
    let requested = "SELECT checkpoints_req FROM pg_stat_bgwriter";
    let before = pg.sql(requested);
    let out = as_postgres(ours("barman-cloud-backup"))
        .args(["--endpoint-url", "http://127.0.0.1:1"])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing-secret")
        .args(["-h", pg.socket_dir().to_str().unwrap(), "-U", "postgres"])
        .args(["s3://bucket/prefix", "pg"])
        .code(2);
    let stderr = out.stderr();
    assert!(
        stderr.contains("can't connect to cloud provider"),
        "{stderr}"
    );
    // pg_backup_start would have requested a checkpoint.
    assert_eq!(pg.sql(requested), before, "a checkpoint was requested");
    pg.stop();
}

/// Every long option of a `--help` text with the heading it is listed under, in order. An
/// option line is indented at most six columns (clap's and argparse's layouts), so an option
/// named inside a description is not taken for one; argparse's `options` heading and clap's
/// `Options` are both written `options`.
fn options_by_heading(help: &str) -> Vec<(String, String)> {
    let mut heading = None;
    let mut found = Vec::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 0 && line.ends_with(':') && !line.starts_with("usage") {
            let name = line.trim_end_matches(':');
            // The examples after the options are command lines, wrapped anywhere.
            if name == "Examples" {
                break;
            }
            heading = Some(if name.eq_ignore_ascii_case("options") {
                "options".to_string()
            } else {
                name.to_string()
            });
            continue;
        }
        let Some(heading) = &heading else { continue };
        if !(2..=6).contains(&indent) || !line.trim_start().starts_with('-') {
            continue;
        }
        let long = line
            .trim()
            .split(", ")
            .find_map(|part| part.strip_prefix("--"))
            .map(|rest| {
                rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .next()
                    .unwrap_or_default()
            });
        if let Some(long) = long {
            found.push((format!("--{long}"), heading.clone()));
        }
    }
    found
}

/// The options Barman lists under a provider's heading, in any of its tools.
const PROVIDER_OPTIONS: &[(&str, &[&str])] = &[
    (
        "Extra options for the aws-s3 cloud provider",
        &[
            "--endpoint-url",
            "--aws-profile",
            "--read-timeout",
            "--addressing-style",
            "--encryption",
            "--sse-kms-key-id",
            "--aws-region",
            "--aws-await-snapshots-timeout",
            "--aws-snapshot-lock-mode",
            "--aws-snapshot-lock-cool-off-period",
            "--aws-snapshot-lock-expiration-date",
            "--aws-snapshot-lock-duration",
        ],
    ),
    (
        "Extra options for the azure-blob-storage cloud provider",
        &[
            "--azure-credential",
            "--encryption-scope",
            "--max-block-size",
            "--max-concurrency",
            "--max-single-put-size",
            "--azure-subscription-id",
            "--azure-resource-group",
        ],
    ),
    (
        "Extra options for google-cloud-storage cloud provider",
        &[
            "--kms-key-name",
            "--snapshot-gcp-project",
            "--gcp-project",
            "--gcp-zone",
        ],
    ),
];

fn our_help(program: &str) -> String {
    Command::new(ours(program)).arg("--help").ok()
}

/// Issue #17 item 1: a heading set on a flattened group carried over, so each command's own
/// options (backup's -h -p -U, delete's -b -r, list's --format...) were listed as Azure's.
#[test]
fn each_option_is_under_its_providers_heading_or_the_general_one() {
    for (program, _) in PROGRAMS {
        let options = options_by_heading(&our_help(program));
        assert!(options.len() > 8, "{program}: {options:?}");
        for (option, heading) in options {
            let expected = PROVIDER_OPTIONS
                .iter()
                .find(|(_, options)| options.contains(&option.as_str()))
                .map_or("options", |(heading, _)| *heading);
            // Our own groups (restore's recovery settings) say so in their heading.
            let ours = expected == "options" && heading.ends_with("(barman-cloud-rs addition)");
            assert!(
                heading == expected || ours,
                "{program}: {option} is under \"{heading}\", not \"{expected}\""
            );
        }
    }
}

/// The same against Barman's own `--help`: each option both have is under the same heading,
/// worded the same.
#[test]
fn help_headings_group_options_as_barmans_do() {
    for (program, _) in PROGRAMS {
        let Some(barman) = barman(program) else {
            return;
        };
        if !barman.exists() {
            // barman-cloud-verify is ours alone.
            continue;
        }
        let theirs = options_by_heading(&Command::new(barman).arg("--help").ok());
        let ours = options_by_heading(&our_help(program));
        let mut compared = 0;
        for (option, heading) in &ours {
            if let Some((_, barmans)) = theirs.iter().find(|(o, _)| o == option) {
                assert_eq!(heading, barmans, "{program}: the heading of {option}");
                compared += 1;
            }
        }
        assert!(compared > 8, "{program}: only {compared} options in common");
    }
}
