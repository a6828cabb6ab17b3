//! Synthetic catalogs: `backup.info` files, tarball stand-ins, keep annotations and WAL
//! objects uploaded straight into a store, so catalog and retention behaviour can be compared
//! with Barman's on many dated backups without taking them.

use bytes::Bytes;
use chrono::{DateTime, Duration, FixedOffset, Local};
use futures::StreamExt;
use object_store::path::Path;

use barman_cloud::catalog::{BackupInfo, Status};
use barman_cloud::postgres::Tablespace;
use barman_cloud::python::PyValue;
use barman_cloud::python::Timestamp;
use barman_cloud::storage::WriteOptions;

use super::Store;

/// One backup of a synthetic catalog.
#[derive(Debug, Clone)]
pub struct Backup {
    pub id: String,
    pub info: BackupInfo,
    /// The tarball objects in its directory (file names).
    pub files: Vec<String>,
    /// The keep annotation's body, if any.
    pub keep: Option<&'static str>,
}

/// What a row of a table says about a backup.
pub struct Row {
    pub days_ago: i64,
    pub status: Status,
    pub timeline: u32,
    /// `(log, segment)` of begin_wal and end_wal.
    pub begin: (u32, u32),
    pub end: Option<(u32, u32)>,
    pub name: Option<&'static str>,
    pub keep: Option<&'static str>,
    pub files: &'static [&'static str],
    pub tablespace: bool,
}

impl Row {
    /// A backup with one `data.tar.gz`, no name, no keep, no tablespace.
    pub fn new(
        days_ago: i64,
        status: Status,
        timeline: u32,
        begin: (u32, u32),
        end: Option<(u32, u32)>,
    ) -> Row {
        Row {
            days_ago,
            status,
            timeline,
            begin,
            end,
            name: None,
            keep: None,
            files: &["data.tar.gz"],
            tablespace: false,
        }
    }
}

pub fn segment(tli: u32, log: u32, seg: u32) -> String {
    format!("{tli:08X}{log:08X}{seg:08X}")
}

/// A backup as barman-cloud-backup would describe it, ended `days_ago` before `now` in a
/// +01:00 session time zone.
pub fn backup(row: &Row, now: DateTime<Local>) -> Backup {
    let end_local = now - Duration::days(row.days_ago);
    let begin_local = end_local - Duration::minutes(7);
    let id = begin_local.format("%Y%m%dT%H%M%S").to_string();
    let zone = FixedOffset::east_opt(3600).unwrap();
    let begin_time = begin_local.with_timezone(&zone);
    let end_time = end_local.with_timezone(&zone) + Duration::microseconds(123_456);
    let (blog, bseg) = row.begin;
    let begin_wal = segment(row.timeline, blog, bseg);
    let mut info = BackupInfo {
        backup_label: Some(format!(
            "START WAL LOCATION: {blog:X}/{:X} (file {begin_wal})\nSTART TIMELINE: {}\n",
            (bseg << 24) + 40,
            row.timeline
        )),
        backup_name: row.name.map(str::to_string),
        begin_offset: Some(40),
        begin_time: Some(Timestamp(begin_time)),
        begin_wal: Some(begin_wal),
        begin_xlog: Some(format!("{blog:X}/{:X}", (bseg << 24) + 40)),
        cluster_size: Some(26_832_585 + row.days_ago as u64),
        config_file: Some("/var/lib/pg/data/postgresql.conf".into()),
        data_checksums: Some("off".into()),
        hba_file: Some("/var/lib/pg/data/pg_hba.conf".into()),
        ident_file: Some("/var/lib/pg/data/pg_ident.conf".into()),
        included_files: Some(vec!["/var/lib/pg/data/postgresql.auto.conf".into()]),
        pgdata: Some("/var/lib/pg/data".into()),
        server_name: Some("cloud".into()),
        status: row.status.clone(),
        systemid: Some("7711951383660576474".into()),
        timeline: Some(row.timeline),
        version: Some(150018),
        ..BackupInfo::default()
    };
    if row.tablespace {
        info.tablespaces = Some(vec![Tablespace {
            name: "tbs1".into(),
            oid: 16384,
            location: "/var/lib/pg/tbs1".into(),
        }]);
    }
    if let Some((elog, eseg)) = row.end {
        info.end_offset = Some(256);
        info.end_time = Some(Timestamp(end_time));
        info.end_wal = Some(segment(row.timeline, elog, eseg));
        info.end_xlog = Some(format!("{elog:X}/{:X}", (eseg << 24) + 256));
    }
    match row.status {
        Status::Done => {
            info.copy_stats = Some(
                PyValue::parse(&format!(
                    "{{'total_time': {}.25, 'number_of_workers': 2, 'analysis_time': 0, \
                     'copy_time': {}.5, 'serialized_copy_time': 0.945071}}",
                    row.days_ago + 1,
                    row.days_ago
                ))
                .unwrap(),
            );
        }
        Status::Failed => info.error = Some("failure uploading data (KeyboardInterrupt)".into()),
        _ => info.backup_label = None,
    }
    Backup {
        id,
        info,
        files: row.files.iter().map(|f| f.to_string()).collect(),
        keep: row.keep,
    }
}

/// Every object of `backups` (keys relative to the server directory) and its body.
pub fn backup_objects(backups: &[Backup]) -> Vec<(String, Bytes)> {
    let mut objects = Vec::new();
    for b in backups {
        let dir = format!("base/{}", b.id);
        objects.push((
            format!("{dir}/backup.info"),
            Bytes::from(b.info.to_string()),
        ));
        for f in &b.files {
            objects.push((format!("{dir}/{f}"), Bytes::from_static(b"tar")));
        }
        if let Some(keep) = b.keep {
            objects.push((
                format!("{dir}/annotations/keep"),
                Bytes::from_static(keep.as_bytes()),
            ));
        }
    }
    objects
}

/// The archive key of a WAL name (relative to the server directory).
pub fn wal_key(name: &str, suffix: &str) -> String {
    if name.ends_with(".history") {
        format!("wals/{name}{suffix}")
    } else {
        format!("wals/{}/{name}{suffix}", &name[..16])
    }
}

/// Uploads `objects` (relative to `<store prefix>/<server>/`) with a few requests in flight.
pub fn upload(store: &Store, server: &str, objects: Vec<(String, Bytes)>) {
    let storage = store.open(&store.url);
    let root = store.key(&storage, server);
    super::block_on(async {
        let results: Vec<_> = futures::stream::iter(objects)
            .map(|(key, body)| {
                let storage = &storage;
                let key = Path::from(format!("{root}/{key}"));
                async move { storage.put(&key, body, &WriteOptions::default()).await }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for r in results {
            r.unwrap();
        }
    });
}
