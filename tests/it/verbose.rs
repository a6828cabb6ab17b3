//! `-v` and `-vv` (issue #17): `-v` names the storage provider and endpoint and the backup a
//! command chose and why, `-vv` adds one line per storage request (method, object key,
//! status, duration), and neither ever shows a credential. Without them, none of it.

use std::process::Command;

use barman_cloud::catalog::Status;
use chrono::Local;

use crate::secrets::{aws_env, connection_string_and_key};
use crate::support::synthetic::{self, Row};
use crate::support::{Provider, Store, TestCommand, ours, temp_dir, wal_like_bytes};

/// A segment per verbosity: an archive of a segment already stored would skip the upload.
const SEGMENTS: [&str; 3] = [
    "000000010000000000000003",
    "000000010000000000000004",
    "000000010000000000000005",
];
const SEGMENT: &str = "000000010000000000000006";

/// stdout and stderr of `program` run with `verbosity` (`""` for none) against `store`.
fn run(
    store: &Store,
    env: &[(String, String)],
    verbosity: &str,
    program: &str,
    rest: &[&str],
) -> String {
    let mut cmd = Command::new(ours(program));
    cmd.envs(env.iter().cloned()).args(&store.args);
    if !verbosity.is_empty() {
        cmd.arg(verbosity);
    }
    let out = cmd.args([store.url.as_str(), "pg"]).args(rest).code(0);
    format!("{}{}", out.stdout(), out.stderr())
}

/// The request line for `method` on an object whose key ends with `key`, checked for its
/// shape: `DEBUG: request PUT /…/key: 201 in 3.2 ms`.
fn assert_request(text: &str, method: &str, key: &str) {
    let line = text
        .lines()
        .find(|l| {
            l.contains(&format!("DEBUG: request {method} ")) && l.contains(&format!("{key}: "))
        })
        .unwrap_or_else(|| panic!("no {method} request line for '{key}' in:\n{text}"));
    let (_, outcome) = line.split_once(&format!("{key}: ")).unwrap();
    let (status, duration) = outcome
        .split_once(" in ")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        status.len() == 3 && status.starts_with('2'),
        "not a success status: {line}"
    );
    let ms = duration
        .strip_suffix(" ms")
        .unwrap_or_else(|| panic!("{line}"));
    assert!(
        ms.parse::<f64>().is_ok_and(|ms| ms >= 0.0),
        "no duration: {line}"
    );
}

/// wal-archive, wal-restore and backup-list at each verbosity against `store`; the
/// provider line must read `provider_line`, and no form of `secrets` may appear.
fn each_verbosity(store: &Store, env: &[(String, String)], provider_line: &str, secrets: &[&str]) {
    let dir = temp_dir();
    for (verbosity, segment) in ["", "-v", "-vv"].into_iter().zip(SEGMENTS) {
        let wal = dir.path().join(segment);
        std::fs::write(&wal, wal_like_bytes(1 << 20, 3)).unwrap();
        let key = format!("/prefix/pg/wals/0000000100000000/{segment}");
        let out = dir.path().join(format!("out-{segment}"));
        let outputs = [
            run(
                store,
                env,
                verbosity,
                "barman-cloud-wal-archive",
                &[wal.to_str().unwrap()],
            ),
            run(
                store,
                env,
                verbosity,
                "barman-cloud-wal-restore",
                &[segment, out.to_str().unwrap()],
            ),
            run(store, env, verbosity, "barman-cloud-backup-list", &[]),
        ];
        for text in &outputs {
            for secret in secrets {
                assert!(!text.contains(secret), "a secret at '{verbosity}':\n{text}");
            }
            let named = text.contains(&format!("INFO: storage: {provider_line}"));
            assert_eq!(
                named,
                !verbosity.is_empty(),
                "provider line at '{verbosity}':\n{text}"
            );
            let requests = text.contains("DEBUG: request ");
            assert_eq!(
                requests,
                verbosity == "-vv",
                "request lines at '{verbosity}':\n{text}"
            );
        }
        if verbosity == "-vv" {
            let [archive, restore, list] = &outputs;
            assert_request(archive, "PUT", &key);
            assert_request(restore, "GET", &key);
            assert_request(list, "GET", "prefix%2Fpg%2Fbase%2F");
        }
    }
}

#[test]
fn s3_requests_and_endpoint_at_each_verbosity() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let secret = "VerboseAwsSecretValue/0123456789abcdef";
    let token = "VerboseSessionTokenValue0123456789";
    let env = aws_env(secret, token);
    let endpoint = store.endpoint_url.clone().unwrap();
    let line = format!("aws-s3 at {endpoint} for {}", store.url);
    each_verbosity(&store, &env, &line, &[secret, token]);
}

/// A real account SAS, signed with Azurite's key by Azure's own SDK (in Barman's venv).
fn account_sas(conn: &str) -> String {
    let script = "import os, datetime as d; from azure.storage.blob import BlobServiceClient, \
                  generate_account_sas, ResourceTypes, AccountSasPermissions as P; \
                  c = BlobServiceClient.from_connection_string(os.environ['CONN']); \
                  print(generate_account_sas(c.account_name, c.credential.account_key, \
                  resource_types=ResourceTypes(service=True, container=True, object=True), \
                  permission=P(read=True, write=True, delete=True, list=True, add=True, \
                  create=True), expiry=d.datetime(2030, 1, 1, tzinfo=d.timezone.utc)))";
    let python = format!("{}/python", std::env::var("BCRS_BARMAN_BIN").unwrap());
    let out = Command::new(python)
        .args(["-c", script])
        .env("CONN", conn)
        .ok();
    out.trim().to_string()
}

#[test]
fn azure_sas_requests_and_endpoint_at_each_verbosity() {
    let Some(store) = Store::new(Provider::Azure) else {
        return;
    };
    let (conn, account_key) = connection_string_and_key(&store);
    let sas = account_sas(&conn);
    let endpoint = std::env::var("BCRS_AZURE_ENDPOINT").unwrap();
    let env = vec![(
        "AZURE_STORAGE_CONNECTION_STRING".to_string(),
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;\
             SharedAccessSignature={sas};BlobEndpoint={endpoint};"
        ),
    )];
    // The signature as the SAS carries it (URL-encoded), decoded, and in lower-case hex.
    let signature = sas.split("sig=").nth(1).unwrap().split('&').next().unwrap();
    let decoded = signature
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let lower = signature
        .replace("%2B", "%2b")
        .replace("%2F", "%2f")
        .replace("%3D", "%3d");
    let line = format!("azure-blob-storage at {endpoint} for {}", store.url);
    let secrets = [sas.as_str(), signature, &decoded, &lower, &account_key];
    each_verbosity(&store, &env, &line, &secrets);
}

#[test]
fn gcs_requests_and_endpoint_at_each_verbosity() {
    let Some(store) = Store::new(Provider::Gcs) else {
        return;
    };
    let endpoint = std::env::var("BCRS_GCS_ENDPOINT").unwrap();
    let line = format!("google-cloud-storage at {endpoint} for {}", store.url);
    let env = store.env.clone();
    each_verbosity_gcs(&store, &env, &line);
}

/// GCS's JSON API names an uploaded object in its `name` parameter and a listing's prefix in
/// `prefix`; reads and deletes carry the key in the path.
fn each_verbosity_gcs(store: &Store, env: &[(String, String)], provider_line: &str) {
    let dir = temp_dir();
    let wal = dir.path().join(SEGMENT);
    std::fs::write(&wal, wal_like_bytes(1 << 20, 4)).unwrap();
    let out = dir.path().join("out");
    let archive = run(
        store,
        env,
        "-vv",
        "barman-cloud-wal-archive",
        &[wal.to_str().unwrap()],
    );
    let restore = run(
        store,
        env,
        "-vv",
        "barman-cloud-wal-restore",
        &[SEGMENT, out.to_str().unwrap()],
    );
    for text in [&archive, &restore] {
        assert!(
            text.contains(&format!("INFO: storage: {provider_line}")),
            "{text}"
        );
    }
    assert_request(
        &archive,
        "POST",
        &format!("o for 'prefix/pg/wals/0000000100000000/{SEGMENT}'"),
    );
    assert_request(
        &restore,
        "GET",
        &format!("prefix%2Fpg%2Fwals%2F0000000100000000%2F{SEGMENT}"),
    );
    let quiet = run(store, env, "", "barman-cloud-backup-list", &[]);
    assert!(
        !quiet.contains("DEBUG: request") && !quiet.contains("INFO: storage"),
        "{quiet}"
    );
}

/// restore, backup-show and backup-delete say which backup they took for a reference and why.
#[test]
fn the_chosen_backup_and_why_at_v() {
    let Some(store) = Store::new(Provider::S3) else {
        return;
    };
    let now = Local::now();
    let rows = [
        Row::new(3, Status::Done, 1, (0, 2), Some((0, 3))),
        Row::new(1, Status::Done, 1, (0, 6), Some((0, 7))),
    ];
    let backups: Vec<_> = rows.iter().map(|r| synthetic::backup(r, now)).collect();
    synthetic::upload(&store, "pg", synthetic::backup_objects(&backups));
    let (oldest, newest) = (&backups[0].id, &backups[1].id);
    let env = store.env.clone();
    let show = run(&store, &env, "-v", "barman-cloud-backup-show", &["latest"]);
    let want = format!("chose backup {newest}: 'latest' is the newest backup not STARTED");
    assert!(show.contains(&want), "no '{want}' in:\n{show}");
    let delete = run(
        &store,
        &env,
        "-v",
        "barman-cloud-backup-delete",
        &["--dry-run", "-b", "oldest"],
    );
    let want = format!("chose backup {oldest}: 'oldest' is the oldest backup not STARTED");
    assert!(delete.contains(&want), "no '{want}' in:\n{delete}");
    let quiet = run(&store, &env, "", "barman-cloud-backup-show", &["latest"]);
    assert!(!quiet.contains("chose backup"), "{quiet}");
}
