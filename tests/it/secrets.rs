//! Credentials never reach any output: known secret values go in through every variable the
//! providers read, and no stdout, stderr or log line (text or JSON, at -vv, on success and on
//! every error path) may contain them.

use std::process::Command;

use crate::support::faults::{Fault, Rule, behind_proxy_on};
use crate::support::{Provider, Store, TestCommand, ours, temp_dir, wal_like_bytes};

const SEGMENT: &str = "000000010000000000000009";

/// How a command must end: its exit code, and a line of its output that shows it reached (or
/// tried to reach) the store, so a command that died before any request cannot pass for
/// silent. `None`: nothing to show, as a `-t` check that succeeds prints nothing (its exit 0
/// is the store's answer).
type Expected = (i32, Option<&'static str>);

/// Runs `program` with `env` and `args`, as text and as JSON logs: it ends as `expected`,
/// and no secret shows in its output.
fn assert_silent(
    program: &str,
    env: &[(String, String)],
    args: &[&str],
    secrets: &[&str],
    (code, line): Expected,
) {
    for format in ["text", "json"] {
        let out = Command::new(ours(program))
            .envs(env.iter().cloned())
            .args(["-vv", "--log-format", format])
            .args(args)
            .code(code);
        let text = format!("{}{}", out.stdout(), out.stderr());
        if let Some(line) = line {
            assert!(text.contains(line), "no '{line}' in:\n{out:?}");
        }
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{program} {args:?} printed a secret:\n{text}"
            );
        }
    }
}

/// How every command ends against the store.
#[derive(Clone, Copy)]
enum Outcome {
    /// The store answers: each command gives its own verdict on an empty catalog.
    Served,
    /// Every request is refused or never connects: every command exits `.0` with `.1`.
    Refused(i32, &'static str),
}

impl Outcome {
    fn expected(self, served: Expected) -> Expected {
        match self {
            Outcome::Served => served,
            Outcome::Refused(code, line) => (code, Some(line)),
        }
    }
}

/// Every command, on success and failure paths, against `store` with `env` and `flags`.
fn every_command(
    store: &Store,
    env: &[(String, String)],
    flags: &[&str],
    secrets: &[&str],
    outcome: Outcome,
) {
    let dir = temp_dir();
    let wal = dir.path().join(SEGMENT);
    std::fs::write(&wal, wal_like_bytes(1 << 20, 9)).unwrap();
    let out = dir.path().join("out");
    let (wal, out) = (wal.to_str().unwrap(), out.to_str().unwrap());
    let cases: Vec<(&str, Vec<&str>, Expected)> = vec![
        (
            "barman-cloud-wal-archive",
            vec![wal],
            (0, Some("archived ")),
        ),
        (
            "barman-cloud-wal-restore",
            vec![SEGMENT, out],
            (0, Some("restored 000000010000000000000009")),
        ),
        (
            "barman-cloud-wal-restore",
            vec!["0000000100000000000000FF", out],
            (1, Some("does not exist")),
        ),
        (
            "barman-cloud-check-wal-archive",
            vec![],
            (1, Some("Expected empty archive")),
        ),
        (
            "barman-cloud-restore",
            vec!["20261126T000000", out],
            (1, Some("does not exists")),
        ),
        (
            "barman-cloud-backup-list",
            vec!["--format", "json"],
            (0, Some("backups_list")),
        ),
        (
            "barman-cloud-backup-show",
            vec!["20261126T000000"],
            (1, Some("does not exist")),
        ),
        (
            "barman-cloud-backup-keep",
            vec!["-s", "20261126T000000"],
            (0, Some("Keep: nokeep")),
        ),
        (
            "barman-cloud-backup-delete",
            vec!["--dry-run", "-r", "REDUNDANCY 1"],
            (0, Some("0 backups deleted by retention policy")),
        ),
        // `-t`, for the commands that take it.
        ("barman-cloud-wal-archive", vec!["-t", wal], (0, None)),
        ("barman-cloud-check-wal-archive", vec!["-t"], (0, None)),
        ("barman-cloud-backup-list", vec!["-t"], (0, None)),
        (
            "barman-cloud-backup-delete",
            vec!["-t", "-r", "REDUNDANCY 1"],
            (0, None),
        ),
    ];
    for (program, rest, served) in cases {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend([store.url.as_str(), "pg"]);
        args.extend(rest);
        assert_silent(program, env, &args, secrets, outcome.expected(served));
    }
}

/// AWS variables for moto with a known secret key and session token.
pub fn aws_env(secret: &str, token: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), secret.to_string()),
        ("AWS_SESSION_TOKEN".to_string(), token.to_string()),
        ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
    ]
}

/// An Azure store's connection string and the account key inside it.
pub fn connection_string_and_key(store: &Store) -> (String, String) {
    let conn = store.env[0].1.clone();
    let key = conn
        .split(';')
        .find_map(|p| p.strip_prefix("AccountKey="))
        .unwrap()
        .to_string();
    (conn, key)
}

#[test]
fn aws_secrets_never_printed() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let secret = "KnownAwsSecretValue/0123456789abcdef";
    let token = "KnownSessionTokenValue0123456789";
    let env = aws_env(secret, token);
    let endpoint = store.endpoint_url.clone().unwrap();
    every_command(
        &store,
        &env,
        &["--endpoint-url", &endpoint],
        &[secret, token],
        Outcome::Served,
    );
    // Error path: nothing listens there.
    every_command(
        &store,
        &env,
        &["--endpoint-url", "http://127.0.0.1:9"],
        &[secret, token],
        Outcome::Refused(2, "can't connect to cloud provider"),
    );
}

#[test]
fn azure_secrets_never_printed() {
    let Some(store) = Store::new(Provider::Azure) else {
        return;
    };
    let (conn, key) = connection_string_and_key(&store);
    let flags = ["--cloud-provider", "azure-blob-storage"];
    // The real key, through the connection string: success paths.
    every_command(&store, &store.env, &flags, &[&key], Outcome::Served);
    // Wrong credentials of every kind: authentication failures must not echo them.
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
    let sas =
        "sv=2026-01-01&ss=b&srt=sco&sp=rwdl&se=2030-01-01T00:00:00Z&sig=KnownSasSignature0123";
    let wrong_conn = conn.replace(&key, wrong_key);
    // Azurite refuses a wrong key in a connection string; an account with a key or a SAS
    // token but no connection string is refused before any request, as the client needs
    // the emulator's endpoint from a connection string.
    let denied = Outcome::Refused(4, "access denied by the store (403): check the credentials");
    let unconfigured = Outcome::Refused(4, "cannot configure the Azure client");
    for (env, outcome) in [
        (
            vec![("AZURE_STORAGE_CONNECTION_STRING".to_string(), wrong_conn)],
            denied,
        ),
        (
            vec![
                (
                    "AZURE_STORAGE_ACCOUNT".to_string(),
                    "devstoreaccount1".to_string(),
                ),
                ("AZURE_STORAGE_KEY".to_string(), wrong_key.to_string()),
            ],
            unconfigured,
        ),
        (
            vec![
                (
                    "AZURE_STORAGE_ACCOUNT".to_string(),
                    "devstoreaccount1".to_string(),
                ),
                ("AZURE_STORAGE_SAS_TOKEN".to_string(), sas.to_string()),
            ],
            unconfigured,
        ),
    ] {
        every_command(
            &store,
            &env,
            &flags,
            &[wrong_key, "KnownSasSignature0123", &key],
            outcome,
        );
    }
}

/// A wrong key is refused by the store: exit 4 (as Barman), one line that says what to check.
#[test]
fn bad_credentials_give_one_clear_line() {
    let Some(store) = Store::new(Provider::Azure) else {
        return;
    };
    let (conn, key) = connection_string_and_key(&store);
    let wrong = conn.replace(&key, "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=");
    let dir = temp_dir();
    let wal = dir.path().join(SEGMENT);
    std::fs::write(&wal, wal_like_bytes(1 << 16, 1)).unwrap();
    let out = Command::new(ours("barman-cloud-wal-archive"))
        .env("AZURE_STORAGE_CONNECTION_STRING", wrong)
        .args(["--cloud-provider", "azure-blob-storage", &store.url, "pg"])
        .arg(&wal)
        .code(4);
    let stderr = out.stderr();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("access denied by the store (403): check the credentials"),
        "{stderr}"
    );
}

/// A SAS token whose request URL a server quotes back in its error body, XML-escaped
/// (`&amp;sig=...`), is still never printed, in any encoding, by any log line (issue #14).
#[test]
fn sas_token_quoted_by_a_server_is_never_printed() {
    let Some((store, proxy)) = behind_proxy_on(Provider::Azure) else {
        return;
    };
    proxy.set(vec![Rule::new(Fault::Status(500))]);
    let proxied = store.through(&proxy.url);
    let endpoint = proxied.url.split('/').take(4).collect::<Vec<_>>().join("/");
    // A signature with the characters base64 brings (+ / =), URL-encoded as a SAS carries it.
    let sas = "sv=2026-01-01&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00:00:00Z&spr=http\
               &sig=Quoted%2BSas%2FSignature0123%3D";
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
             SharedAccessSignature={sas};BlobEndpoint={endpoint};"
        ),
    )];
    let signature = "Quoted+Sas/Signature0123=";
    let forms = [
        signature,
        "Quoted%2BSas%2FSignature0123%3D",
        "Quoted%2bSas%2fSignature0123%3d",
        "Signature0123",
        &sas.replace('&', "&amp;"),
    ];
    let dir = temp_dir();
    let wal = dir.path().join(SEGMENT);
    std::fs::write(&wal, wal_like_bytes(1 << 16, 2)).unwrap();
    let out = dir.path().join("out");
    let flags = ["--cloud-provider", "azure-blob-storage"];
    for rest in [
        vec![wal.to_str().unwrap()],
        vec![SEGMENT, out.to_str().unwrap()],
        vec![],
    ] {
        let program = match rest.len() {
            1 => "barman-cloud-wal-archive",
            2 => "barman-cloud-wal-restore",
            _ => "barman-cloud-backup-list",
        };
        let mut args = flags.to_vec();
        args.extend([proxied.url.as_str(), "pg"]);
        args.extend(rest);
        // The proxy answers every request with a 500, which each command reports.
        assert_silent(program, &env, &args, &forms, (4, Some("injected fault")));
    }
    assert!(proxy.injected() > 0, "no request reached the proxy");
    // What the body said still reaches the user, as its code and message only.
    let out = Command::new(ours("barman-cloud-wal-archive"))
        .envs(env.iter().cloned())
        .args(flags)
        .args([proxied.url.as_str(), "pg"])
        .arg(&wal)
        .code(4);
    let stderr = out.stderr();
    assert!(stderr.contains("InternalError: injected fault"), "{stderr}");
    assert!(!stderr.contains("<Resource>"), "{stderr}");
}
