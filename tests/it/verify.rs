//! barman-cloud-verify (issue #18 item 2): a backup of a real PostgreSQL 15 server verifies
//! (text and JSON), and faults planted in its objects and its WAL archive are each found,
//! named, and make it exit 1; a backup made by Barman's barman-cloud-backup verifies too.

use crate::support::primary::{By, Options, Primary};
use crate::support::{Provider, Ran, Store, TestCommand, matrix, ours};

pub fn verify(store: &Store, rest: &[&str]) -> Ran {
    store
        .command(ours("barman-cloud-verify"))
        .arg(&store.url)
        .arg("pg")
        .args(rest)
        .ran()
}

/// Both outputs of a failed verification, where the problem lines and the summary are.
fn failure(store: &Store, rest: &[&str]) -> String {
    let ran = verify(store, rest).code(1);
    format!("{}{}", ran.stdout(), ran.stderr())
}

/// The archived segments (keys under `pg/wals/`), in order.
pub fn segments(store: &Store) -> Vec<String> {
    store
        .list_keys("pg/wals")
        .into_iter()
        .filter(|k| {
            let name = k.rsplit('/').next().unwrap();
            name.len() >= 24 && !name.contains(".history") && !name.contains(".backup")
        })
        .collect()
}

/// `key` relative to the store's prefix, for [`Store::get_bytes`] and the like.
pub fn sub(key: &str) -> String {
    key[key.find("pg/").unwrap()..].to_string()
}

/// A primary with a tablespace and pgbench data, archiving its WAL gzipped.
pub(crate) fn tablespace_primary(provider: Provider) -> Option<Primary> {
    Primary::new(
        provider,
        Options {
            archive_flags: "--gzip",
            tablespace: Some("tbs"),
            pgbench_scale: Some(1),
            ..Options::default()
        },
    )
}

fn good_then_faults(provider: Provider) {
    let Some(primary) = tablespace_primary(provider) else {
        return;
    };
    primary.backup(By::Us, &["--immediate-checkpoint", "--gzip", "-S", "1MB"]);
    for note in ["one", "two", "three"] {
        primary.mark(note);
    }
    let store = &primary.store;
    let id = primary.backup_ids().pop().unwrap();

    let text = verify(store, &[]).ok();
    assert!(text.contains(&format!("backup {id}: OK")), "{text}");
    assert!(
        text.contains("0 gap(s)") && !text.contains("problem"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&verify(store, &["latest", "--format", "json", "-J", "2"]).ok())
            .unwrap();
    let backup = &json["backups"][0];
    assert_eq!(backup["backup_id"], id.as_str());
    assert_eq!(backup["problems"].as_array().unwrap().len(), 0, "{json}");
    assert!(backup["parts"].as_u64().unwrap() >= 3, "{json}");
    assert!(backup["wal_segments"].as_u64().unwrap() >= 1, "{json}");
    assert_eq!(json["archive"]["gaps"].as_array().unwrap().len(), 0);
    assert!(json["archive"]["newest_wal_age_seconds"].as_i64().unwrap() >= 0);

    let dir = format!("pg/base/{id}");
    let part = |name: &str| format!("{dir}/{name}");
    // A truncated gzip part.
    let original = store.get_bytes(&part("data_0001.tar.gz"));
    store.put_bytes(
        &part("data_0001.tar.gz"),
        original[..original.len() / 2].to_vec(),
    );
    let out = failure(store, &[&id]);
    assert!(out.contains("data_0001.tar.gz"), "{out}");
    // A flipped byte inside a compressed tarball.
    let mut flipped = original.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x55;
    store.put_bytes(&part("data_0001.tar.gz"), flipped);
    let out = failure(store, &[&id]);
    assert!(out.contains("data_0001.tar.gz"), "{out}");
    // A missing part.
    store.delete(&part("data_0001.tar.gz"));
    let out = failure(store, &["all"]);
    assert!(
        out.contains(&format!("Missing file pg/base/{id}/data_0001.*"))
            || out.contains(&format!("{id}/data_0001.*")),
        "{out}"
    );
    store.put_bytes(&part("data_0001.tar.gz"), original);
    verify(store, &[&id]).ok();

    // A WAL segment deleted in the middle of the archive: a one-segment gap.
    let wals = segments(store);
    assert!(wals.len() >= 4, "{wals:?}");
    let middle = wals[wals.len() - 2].clone();
    let saved = store.get_bytes(&sub(&middle));
    store.delete(&sub(&middle));
    let name = &middle.rsplit('/').next().unwrap()[..24];
    let out = failure(store, &["--wal-only"]);
    assert!(
        out.contains(&format!("{name} to {name} (1 segment(s))")),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(
        verify(store, &["--wal-only", "--format", "json"])
            .code(1)
            .stdout(),
    )
    .unwrap();
    assert_eq!(json["archive"]["gaps"][0]["count"], 1, "{json}");
    assert_eq!(json["archive"]["gaps"][0]["first"], name, "{json}");
    store.put_bytes(&sub(&middle), saved);

    // A backup whose end WAL was never archived.
    let end_wal = store.info_field(&id, "end_wal");
    let end_key = wals.iter().find(|k| k.contains(&end_wal)).unwrap().clone();
    store.delete(&sub(&end_key));
    let out = failure(store, &[&id]);
    assert!(
        out.contains(&format!(
            "WAL {end_wal} (needed by backup {id}) is not in the archive"
        )),
        "{out}"
    );
}

matrix! {
    verify_file_finds_each_fault => good_then_faults(Provider::File),
    verify_s3_finds_each_fault => good_then_faults(Provider::S3),
    verify_azure_finds_each_fault => good_then_faults(Provider::Azure),
    verify_gcs_finds_each_fault => good_then_faults(Provider::Gcs),
}

/// A backup made by Barman's barman-cloud-backup (WAL archived by Barman, uncompressed)
/// verifies.
#[test]
fn a_barman_backup_verifies() {
    let Some(primary) = Primary::new(
        Provider::S3,
        Options {
            archiver: By::Barman,
            pgbench_scale: Some(1),
            ..Options::default()
        },
    ) else {
        return;
    };
    primary.backup(By::Barman, &["--immediate-checkpoint", "--snappy"]);
    primary.mark("after");
    let text = verify(&primary.store, &["latest"]).ok();
    let id = primary.backup_ids().pop().unwrap();
    assert!(text.contains(&format!("backup {id}: OK")), "{text}");
}
