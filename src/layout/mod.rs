//! The Barman Cloud object layout: the only place an object key is spelled.
//!
//! ```text
//! <prefix>/<server>/wals/<TTTTTTTTLLLLLLLL>/<segment>[<compression suffix>]
//! <prefix>/<server>/wals/<TTTTTTTT>.history[<compression suffix>]
//! <prefix>/<server>/base/<backup_id>/backup.info
//! <prefix>/<server>/base/<backup_id>/data[_NNNN].tar[<ext>]   and  <oid>[_NNNN].tar[<ext>]
//! <prefix>/<server>/base/<backup_id>/annotations/keep
//! ```
//!
//! Keys are relative to the bucket (or container, or `file://` root). Barman joins them with
//! `os.path.join`, so an empty prefix gives `<server>/...` and a trailing `/` on the prefix
//! does not double the separator.

use object_store::path::Path;

use crate::compress::Compression;
use crate::postgres::WalName;

/// The file in each backup directory that says what the backup is; written last.
pub const BACKUP_INFO: &str = "backup.info";

/// A backup's ID: the name of its directory under `base/`. Backups are taken with IDs of
/// the form `YYYYMMDDTHHMMSS`, but the catalog lists whatever directory holds a
/// `backup.info`, so any name is kept as found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct BackupId(String);

impl BackupId {
    /// A backup directory's name, as listed.
    pub fn new(name: impl Into<String>) -> Self {
        BackupId(name.into())
    }

    /// A reference given by the user, when it has the shape of an ID (see [`is_backup_id`]):
    /// such a reference names a backup without a lookup.
    pub fn parse(reference: &str) -> Option<Self> {
        is_backup_id(reference).then(|| BackupId(reference.to_string()))
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BackupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for BackupId {
    fn from(name: &str) -> Self {
        BackupId::new(name)
    }
}

impl std::ops::Deref for BackupId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

// Maps keyed by ID are looked up with a plain `&str`: the ordering and hash are the text's.
impl std::borrow::Borrow<str> for BackupId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for BackupId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for BackupId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Where one server's objects live inside a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    server_root: String,
}

impl Layout {
    /// The layout for `server` under the key prefix taken from the destination URL.
    pub fn new(prefix: &str, server: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        let server_root = if prefix.is_empty() {
            server.to_string()
        } else {
            format!("{prefix}/{server}")
        };
        Self { server_root }
    }

    fn key(&self, rest: &str) -> Path {
        Path::from(format!("{}/{rest}", self.server_root))
    }

    /// `<server>/`: everything that belongs to the server.
    pub fn server_dir(&self) -> Path {
        Path::from(self.server_root.as_str())
    }

    /// The server name, as messages spell it.
    pub fn server_name(&self) -> String {
        self.server_dir().filename().unwrap_or_default().to_string()
    }

    /// `<server>/wals/`: the WAL archive.
    pub fn wals_dir(&self) -> Path {
        self.key("wals")
    }

    /// The directory holding `wal`: its hash directory, or `wals/` itself for history files.
    pub fn wal_dir(&self, wal: &WalName) -> Path {
        match wal.hash_dir() {
            Some(dir) => self.key(&format!("wals/{dir}")),
            None => self.wals_dir(),
        }
    }

    /// The key of an archived WAL file compressed with `compression`.
    pub fn wal_key(&self, wal: &WalName, compression: Option<Compression>) -> Path {
        let suffix = compression.map_or("", Compression::suffix);
        self.wal_dir(wal).clone().join(format!("{wal}{suffix}"))
    }

    /// `<server>/base/`: the backups.
    pub fn base_dir(&self) -> Path {
        self.key("base")
    }

    /// `<server>/base/<backup_id>/`.
    pub fn backup_dir(&self, backup_id: &BackupId) -> Path {
        self.base_dir().clone().join(backup_id.as_str())
    }

    /// `<server>/base/<backup_id>/backup.info`.
    pub fn backup_info(&self, backup_id: &BackupId) -> Path {
        self.backup_dir(backup_id).clone().join(BACKUP_INFO)
    }

    /// The key of one tarball part: `base/<id>/<data|oid>[_NNNN].tar[<ext>]`.
    pub fn tarball(&self, backup_id: &BackupId, part: &Tarball) -> Path {
        self.backup_dir(backup_id).clone().join(part.file_name())
    }

    /// `<server>/base/<backup_id>/annotations/keep`.
    pub fn keep_annotation(&self, backup_id: &BackupId) -> Path {
        self.backup_dir(backup_id)
            .clone()
            .join("annotations")
            .join("keep")
    }
}

/// One tar archive of a backup: PGDATA (`data`) or a tablespace (its oid), part `index` of a
/// split (0 is the first, which has no counter), compressed or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tarball {
    /// `data` or the tablespace oid in decimal.
    pub base: String,
    /// The part number: 0 for the first part, then 1, 2, ... (`_<n>` in the name).
    pub index: u32,
    /// Its compression, from the suffix.
    pub compression: Option<Compression>,
}

/// The compressions of backup tarballs: Barman's four, then zstd, which only we write and
/// read (Barman's tools skip a `.tar.zst` part as an unknown extension).
pub const TARBALL_COMPRESSIONS: [Compression; 5] = [
    Compression::Gzip,
    Compression::Bzip2,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

impl Tarball {
    /// `data.tar.gz`, `data_0001.tar.gz`, `16384_0012.tar` ...
    pub fn file_name(&self) -> String {
        let counter = if self.index == 0 {
            String::new()
        } else {
            format!("_{:04}", self.index)
        };
        let ext = self.compression.map_or("", Compression::suffix);
        format!("{}{counter}.tar{ext}", self.base)
    }

    /// Reads a tarball file name back; `None` for anything else (`backup.info`, annotations,
    /// or an extension the restore side does not know, which Barman skips).
    pub fn parse(file_name: &str) -> Option<Tarball> {
        let (stem, compression) = match file_name.rsplit_once(".tar") {
            Some((stem, "")) => (stem, None),
            Some((stem, ext)) => (
                stem,
                Some(
                    TARBALL_COMPRESSIONS
                        .into_iter()
                        .find(|c| c.suffix() == ext)?,
                ),
            ),
            None => return None,
        };
        let (base, index) = match stem.rsplit_once('_') {
            Some((base, n)) if n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()) => {
                (base, n.parse().ok()?)
            }
            _ => (stem, 0),
        };
        let valid_base =
            base == "data" || (!base.is_empty() && base.bytes().all(|b| b.is_ascii_digit()));
        valid_base.then(|| Tarball {
            base: base.to_string(),
            index,
            compression,
        })
    }
}

/// Whether `s` has the shape of a backup ID (`YYYYMMDDTHHMMSS`), as Barman tests it: such a
/// string is taken as an ID without looking it up, anything else as a shortcut or a name.
/// Python's `$` also matches before one final newline, so that is accepted too.
pub fn is_backup_id(s: &str) -> bool {
    let s = s.strip_suffix('\n').unwrap_or(s);
    let b = s.as_bytes();
    b.len() == 15 && b[8] == b'T' && b[..8].iter().chain(&b[9..]).all(u8::is_ascii_digit)
}

/// Splits an object key's last part into the WAL name and its compression, if the key names
/// an archived WAL file (one known suffix at most, as Barman recognises).
pub fn parse_wal_object(key: &Path) -> Option<(WalName, Option<Compression>)> {
    let file = key.filename()?;
    let (name, compression) = Compression::split_suffix(file);
    Some((WalName::parse(name).ok()?, compression))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal(name: &str) -> WalName {
        WalName::parse(name).unwrap()
    }

    #[test]
    fn tarball_names_match_barman() {
        let l = Layout::new("prefix", "pg");
        let data = |index, compression| Tarball {
            base: "data".into(),
            index,
            compression,
        };
        assert_eq!(
            l.tarball(&"20261125T035049".into(), &data(0, None))
                .as_ref(),
            "prefix/pg/base/20261125T035049/data.tar"
        );
        assert_eq!(
            data(1, Some(Compression::Gzip)).file_name(),
            "data_0001.tar.gz"
        );
        assert_eq!(data(12345, None).file_name(), "data_12345.tar");
        for name in [
            "data.tar",
            "data_0002.tar.lz4",
            "16384.tar.snappy",
            "16384_0001.tar.bz2",
            "data_0003.tar.zst",
        ] {
            assert_eq!(Tarball::parse(name).unwrap().file_name(), name);
        }
        for name in ["backup.info", "data.tar.xz", "keep", "x.tar", "data.tgz"] {
            assert_eq!(Tarball::parse(name), None, "{name}");
        }
        assert_eq!(
            l.keep_annotation(&"20261125T035049".into()).as_ref(),
            "prefix/pg/base/20261125T035049/annotations/keep"
        );
    }

    #[test]
    fn backup_id_shape() {
        assert!(is_backup_id("20261125T035049"));
        assert!(is_backup_id("20261125T035049\n"));
        for s in [
            "20261125t035049",
            "2026112T035049",
            "20261125T0350490",
            "latest",
            "",
        ] {
            assert!(!is_backup_id(s), "{s:?}");
        }
        assert_eq!(Layout::new("p/", "pg").server_name(), "pg");
    }

    #[test]
    fn wal_keys_match_barman() {
        let l = Layout::new("prefix", "pg");
        let seg = wal("000000010000000000000004");
        assert_eq!(
            l.wal_key(&seg, None).as_ref(),
            "prefix/pg/wals/0000000100000000/000000010000000000000004"
        );
        assert_eq!(
            l.wal_key(&seg, Some(Compression::Gzip)).as_ref(),
            "prefix/pg/wals/0000000100000000/000000010000000000000004.gz"
        );
        let hist = wal("00000002.history");
        assert_eq!(
            l.wal_key(&hist, Some(Compression::Gzip)).as_ref(),
            "prefix/pg/wals/00000002.history.gz"
        );
        let backup = wal("000000010000000000000004.00000028.backup");
        assert_eq!(
            l.wal_key(&backup, None).as_ref(),
            "prefix/pg/wals/0000000100000000/000000010000000000000004.00000028.backup"
        );
    }

    #[test]
    fn prefix_forms_join_like_os_path_join() {
        let seg = wal("000000010000000000000004");
        for (prefix, root) in [("", "pg"), ("p/", "p/pg"), ("p", "p/pg"), ("a/b", "a/b/pg")] {
            let key = Layout::new(prefix, "pg").wal_key(&seg, None);
            assert_eq!(
                key.as_ref(),
                format!("{root}/wals/0000000100000000/000000010000000000000004")
            );
        }
        assert_eq!(
            Layout::new("", "pg")
                .backup_info(&"20261125T035049".into())
                .as_ref(),
            "pg/base/20261125T035049/backup.info"
        );
    }

    #[test]
    fn recognises_archived_wal_objects() {
        let key = Path::from("pg/wals/0000000100000000/000000010000000000000004.zst");
        let (name, c) = parse_wal_object(&key).unwrap();
        assert_eq!(
            (name.as_str(), c),
            ("000000010000000000000004", Some(Compression::Zstd))
        );
        assert!(parse_wal_object(&Path::from("pg/wals/junk.txt")).is_none());
        assert!(
            parse_wal_object(&Path::from(
                "pg/wals/0000000100000000/000000010000000000000004.gz.gz"
            ))
            .is_none()
        );
    }
}
