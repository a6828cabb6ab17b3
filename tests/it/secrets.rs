//! Credentials never reach any output: known secret values go in through every variable the
//! providers read, and no stdout, stderr or log line (text or JSON, at -vv, on success and on
//! every error path) may contain them.

use std::process::Command;

use crate::support::{Provider, Store, ours, run, temp_dir, wal_like_bytes};

const SEGMENT: &str = "000000010000000000000009";

/// Runs `program` with `env` and `args`; fails if any secret shows in its output.
fn assert_silent(program: &str, env: &[(String, String)], args: &[&str], secrets: &[&str]) {
    for format in ["text", "json"] {
        let out = run(Command::new(ours(program))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .args(["-vv", "--log-format", format])
            .args(args));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "{program} {args:?} printed a secret:\n{text}"
            );
        }
    }
}

/// Every command, on success and failure paths, against `store` with `env` and `flags`.
fn every_command(store: &Store, env: &[(String, String)], flags: &[&str], secrets: &[&str]) {
    let dir = temp_dir();
    let wal = dir.path().join(SEGMENT);
    std::fs::write(&wal, wal_like_bytes(1 << 20, 9)).unwrap();
    let out = dir.path().join("out");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("barman-cloud-wal-archive", vec![wal.to_str().unwrap()]),
        (
            "barman-cloud-wal-restore",
            vec![SEGMENT, out.to_str().unwrap()],
        ),
        (
            "barman-cloud-wal-restore",
            vec!["0000000100000000000000FF", out.to_str().unwrap()],
        ),
        ("barman-cloud-check-wal-archive", vec![]),
        (
            "barman-cloud-restore",
            vec!["20261126T000000", out.to_str().unwrap()],
        ),
        ("barman-cloud-backup-list", vec!["--format", "json"]),
        ("barman-cloud-backup-show", vec!["20261126T000000"]),
        ("barman-cloud-backup-keep", vec!["-s", "20261126T000000"]),
        (
            "barman-cloud-backup-delete",
            vec!["--dry-run", "-r", "REDUNDANCY 1"],
        ),
    ];
    for (program, rest) in cases {
        let mut args: Vec<&str> = flags.to_vec();
        args.push(&store.url);
        args.push("pg");
        args.extend(rest);
        assert_silent(program, env, &args, secrets);
        let mut test = flags.to_vec();
        test.extend(["-t", &store.url, "pg"]);
        if program == "barman-cloud-wal-archive" {
            test.push(wal.to_str().unwrap());
        }
        // `-t` alone, for the commands that need no further positionals.
        let more_positionals = [
            "barman-cloud-wal-restore",
            "barman-cloud-restore",
            "barman-cloud-backup-show",
            "barman-cloud-backup-keep",
        ];
        if !more_positionals.contains(&program) {
            assert_silent(program, env, &test, secrets);
        }
    }
}

/// An Azure store's connection string and the account key inside it.
fn connection_string_and_key(store: &Store) -> (String, String) {
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
    let env = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), secret.to_string()),
        ("AWS_SESSION_TOKEN".to_string(), token.to_string()),
        ("AWS_DEFAULT_REGION".to_string(), "us-east-1".to_string()),
    ];
    let endpoint = store.args[1].clone();
    every_command(
        &store,
        &env,
        &["--endpoint-url", &endpoint],
        &[secret, token],
    );
    // Error path: nothing listens there.
    every_command(
        &store,
        &env,
        &["--endpoint-url", "http://127.0.0.1:9"],
        &[secret, token],
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
    every_command(&store, &store.env, &flags, &[&key]);
    // Wrong credentials of every kind: authentication failures must not echo them.
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
    let sas =
        "sv=2026-01-01&ss=b&srt=sco&sp=rwdl&se=2030-01-01T00:00:00Z&sig=KnownSasSignature0123";
    let wrong_conn = conn.replace(&key, wrong_key);
    for env in [
        vec![("AZURE_STORAGE_CONNECTION_STRING".to_string(), wrong_conn)],
        vec![
            (
                "AZURE_STORAGE_ACCOUNT".to_string(),
                "devstoreaccount1".to_string(),
            ),
            ("AZURE_STORAGE_KEY".to_string(), wrong_key.to_string()),
        ],
        vec![
            (
                "AZURE_STORAGE_ACCOUNT".to_string(),
                "devstoreaccount1".to_string(),
            ),
            ("AZURE_STORAGE_SAS_TOKEN".to_string(), sas.to_string()),
        ],
    ] {
        every_command(
            &store,
            &env,
            &flags,
            &[wrong_key, "KnownSasSignature0123", &key],
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
    let out = run(Command::new(ours("barman-cloud-wal-archive"))
        .env("AZURE_STORAGE_CONNECTION_STRING", wrong)
        .args(["--cloud-provider", "azure-blob-storage", &store.url, "pg"])
        .arg(&wal));
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("access denied: check the credentials"),
        "{stderr}"
    );
}

/// A SAS token whose request URL a server quotes back in its error body, XML-escaped
/// (`&amp;sig=...`), is still never printed, in any encoding, by any log line (issue #14).
#[test]
fn sas_token_quoted_by_a_server_is_never_printed() {
    use crate::faults::behind_proxy_on;
    use crate::support::faults::{Fault, Rule};
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
        assert_silent(program, &env, &args, &forms);
    }
    assert!(proxy.injected() > 0, "no request reached the proxy");
    // What the body said still reaches the user, as its code and message only.
    let out = run(Command::new(ours("barman-cloud-wal-archive"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(flags)
        .args([proxied.url.as_str(), "pg"])
        .arg(&wal));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("InternalError: injected fault"), "{stderr}");
    assert!(!stderr.contains("<Resource>"), "{stderr}");
}
