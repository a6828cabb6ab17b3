//! The backup manifest (issue #18 item 1): our barman-cloud-backup of a PostgreSQL 15
//! pgbench database with a tablespace stores a `backup_manifest` as PostgreSQL writes it,
//! and PostgreSQL's own `pg_verifybackup` (replaying the archived WAL the manifest names)
//! passes on the directory restored by our barman-cloud-restore and on the one restored by
//! Barman's, for each checksum algorithm; barman-cloud-verify checks every file against it
//! on each provider, and finds a flipped byte that only the manifest can see.

use std::path::{Path, PathBuf};

use barman_cloud::postgres::WalName;

use crate::support::pg::{as_postgres, pg_bin};
use crate::support::primary::{By, Options, Primary};
use crate::support::{Provider, Store, TestCommand, barman, ours};
use crate::verify::{tablespace_primary, verify};

/// Restores backup `id` by `by` into `<root>/<name>` (its tablespace into
/// `<root>/<name>-tbs`); returns PGDATA.
fn restore(primary: &Primary, by: By, id: &str, name: &str) -> PathBuf {
    let data = primary.root.join(name);
    let tbs = primary.root.join(format!("{name}-tbs"));
    let program = match by {
        By::Us => ours("barman-cloud-restore"),
        By::Barman => barman("barman-cloud-restore").expect("the rig provides Barman"),
    };
    primary
        .store
        .command(program)
        .args([&primary.store.url, "pg", id])
        .arg(&data)
        .arg(format!("--tablespace=tbs:{}", tbs.display()))
        .ok();
    data
}

/// Fetches the WAL segments from the backup's begin WAL to its end WAL with our
/// wal-restore into `<root>/wal-<id>`, readable by the postgres user.
fn fetch_wal(primary: &Primary, id: &str) -> PathBuf {
    let dir = primary.dir(&format!("wal-{id}"));
    let store = &primary.store;
    let end = store.info_field(id, "end_wal");
    let mut at = WalName::parse(&store.info_field(id, "begin_wal")).unwrap();
    loop {
        store
            .command(ours("barman-cloud-wal-restore"))
            .args([&store.url, "pg", at.as_str()])
            .arg(dir.join(at.as_str()))
            .ok();
        crate::support::chmod_world(&dir.join(at.as_str()));
        if at.as_str() == end {
            return dir;
        }
        at = at.next_segment(256).unwrap();
    }
}

/// Runs PostgreSQL's pg_verifybackup on `data`, parsing the WAL in `wal`, as the server's
/// user.
fn pg_verifybackup(data: &Path, wal: &Path) -> crate::support::Ran {
    as_postgres(pg_bin("pg_verifybackup"))
        .arg("-w")
        .arg(wal)
        .arg(data)
        .ran()
}

/// The members of one tarball part, in order.
fn members(store: &Store, key: &str) -> Vec<String> {
    let bytes = store.get_bytes(key);
    let tar = match key.rsplit('.').next() {
        Some("gz") => {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
                .unwrap();
            out
        }
        Some("tar") => bytes,
        other => panic!("no decoder here for {other:?}"),
    };
    tar::Archive::new(&tar[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// A backup with `flags` restored by both tools passes pg_verifybackup on both copies;
/// returns the primary and the backup ID for more checks.
fn both_restores_verify(provider: Provider, flags: &[&str]) -> Option<(Primary, String)> {
    let primary = tablespace_primary(provider)?;
    primary.pg.pgbench(&["-t", "200", "-c", "2"]);
    let mut backup = vec!["--immediate-checkpoint"];
    backup.extend(flags);
    primary.backup(By::Us, &backup);
    let id = primary.backup_ids().pop().unwrap();
    let wal = fetch_wal(&primary, &id);
    for by in [By::Us, By::Barman] {
        let data = restore(&primary, by, &id, &format!("{by:?}").to_lowercase());
        let ran = pg_verifybackup(&data, &wal);
        assert!(
            ran.success() && ran.stdout().contains("backup successfully verified"),
            "pg_verifybackup on the restore by {by:?}: {ran:?}"
        );
    }
    let text = verify(&primary.store, &[&id]).ok();
    assert!(text.contains(&format!("backup {id}: OK")), "{text}");
    assert!(
        text.contains(&format!("backup {id}: backup_manifest: ")) && text.contains(" checked"),
        "{text}"
    );
    Some((primary, id))
}

/// A byte flipped inside a file of an uncompressed tarball leaves a valid tar archive:
/// only the manifest's checksum finds it, and verify names the file and the part.
#[test]
fn verify_names_the_file_with_a_flipped_byte_in_an_uncompressed_tarball() {
    let Some(primary) = tablespace_primary(Provider::File) else {
        return;
    };
    primary.backup(By::Us, &["--immediate-checkpoint"]);
    let id = primary.backup_ids().pop().unwrap();
    let store = &primary.store;
    verify(store, &[&id]).ok();
    let key = format!("pg/base/{id}/data.tar");
    let mut bytes = store.get_bytes(&key);
    let at = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().ends_with("PG_VERSION"))
        .unwrap()
        .raw_file_position() as usize;
    bytes[at] ^= 0x01;
    store.put_bytes(&key, bytes);
    let ran = verify(store, &[&id]).code(1);
    let out = format!("{}{}", ran.stdout(), ran.stderr());
    assert!(
        out.contains(&format!(
            "backup {id} does not match its backup_manifest: 'PG_VERSION' in '"
        )) && out.contains("data.tar' has CRC32C checksum"),
        "{out}"
    );
}

/// A backup by Barman's barman-cloud-backup has no manifest: it verifies, and says in one
/// line (text and JSON) that file checksums were not checked.
#[test]
fn a_barman_backup_without_manifest_says_so() {
    let Some(primary) = Primary::new(
        Provider::S3,
        Options {
            archiver: By::Barman,
            ..Options::default()
        },
    ) else {
        return;
    };
    primary.backup(By::Barman, &["--immediate-checkpoint"]);
    let id = primary.backup_ids().pop().unwrap();
    let text = verify(&primary.store, &[&id]).ok();
    let line = format!("backup {id}: no backup_manifest");
    assert!(
        text.contains(&line) && text.contains(&format!("backup {id}: OK")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&verify(&primary.store, &[&id, "--format", "json"]).ok()).unwrap();
    let note = json["backups"][0]["manifest"].as_str().unwrap();
    assert!(note.starts_with("no backup_manifest"), "{json}");
}

/// CRC32C (the default), gzip, parts split at 1 MB on S3: the manifest is the last member
/// of the last data part, after backup_label, and lists the tablespace's files under
/// pg_tblspc/<oid>/.
#[test]
fn crc32c_split_gzip_on_s3_passes_pg_verifybackup_after_either_restore() {
    let Some((primary, id)) = both_restores_verify(Provider::S3, &["--gzip", "-S", "1MB"]) else {
        return;
    };
    let store = &primary.store;
    let mut parts: Vec<String> = store
        .list_keys(&format!("pg/base/{id}"))
        .into_iter()
        .filter(|k| k.rsplit('/').next().unwrap().starts_with("data"))
        .collect();
    parts.sort();
    assert!(parts.len() > 1, "{parts:?}");
    let last = parts.pop().unwrap();
    let last = members(store, &last[last.find("pg/").unwrap()..]);
    assert_eq!(
        last[last.len() - 2..],
        ["backup_label", "backup_manifest"],
        "{last:?}"
    );
    let manifest = std::fs::read_to_string(primary.root.join("us/backup_manifest")).unwrap();
    assert!(manifest.starts_with("{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"));
    let oid = primary
        .pg
        .sql("SELECT oid FROM pg_tablespace WHERE spcname = 'tbs'");
    assert!(
        manifest.contains(&format!("{{ \"Path\": \"pg_tblspc/{oid}/PG_15_")),
        "{manifest}"
    );
    assert!(manifest.contains("\"Checksum-Algorithm\": \"CRC32C\""));
    assert!(manifest.contains("{ \"Path\": \"backup_label\", "));
    assert!(manifest.contains("{ \"Path\": \"global/pg_control\", "));
}

/// SHA256, uncompressed, on GCS.
#[test]
fn sha256_on_gcs_passes_pg_verifybackup_after_either_restore() {
    let Some((primary, _)) =
        both_restores_verify(Provider::Gcs, &["--manifest-checksums", "sha256"])
    else {
        return;
    };
    let manifest = std::fs::read_to_string(primary.root.join("barman/backup_manifest")).unwrap();
    assert!(manifest.contains("\"Checksum-Algorithm\": \"SHA256\""));
    assert!(!manifest.contains("CRC32C"));
}

/// NONE on Azure: no checksums, but every size, which pg_verifybackup checks: a restored
/// file cut short fails it, named.
#[test]
fn none_on_azure_still_lists_sizes() {
    let Some((primary, _)) = both_restores_verify(
        Provider::Azure,
        &["--manifest-checksums", "NONE", "--snappy"],
    ) else {
        return;
    };
    let data = primary.root.join("us");
    let manifest = std::fs::read_to_string(data.join("backup_manifest")).unwrap();
    assert!(!manifest.contains("Checksum-Algorithm"), "{manifest}");
    assert!(manifest.contains("{ \"Path\": \"PG_VERSION\", \"Size\": 3, "));
    let file = data.join("PG_VERSION");
    std::fs::write(&file, "1").unwrap();
    let ran = as_postgres(pg_bin("pg_verifybackup"))
        .arg("-n")
        .arg(&data)
        .ran();
    assert!(
        !ran.success()
            && ran
                .stderr()
                .contains("\"PG_VERSION\" has size 1 on disk but size 3"),
        "{ran:?}"
    );
}
