use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use super::*;

/// Builds tar streams member by member, with raw names (the `tar` crate's own setters refuse
/// the hostile paths these tests need).
#[derive(Default)]
struct Tar(Vec<u8>);

impl Tar {
    fn member(mut self, name: &str, kind: EntryType, mode: u32, link: &str, data: &[u8]) -> Self {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        self.0.resize(self.0.len().next_multiple_of(512), 0);
        self
    }

    /// A pax header for the next member, as Python's tarfile writes before each one.
    fn pax(self, records: &[(&str, &str)]) -> Self {
        let mut data = String::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let mut len = body.len() + 1;
            while (len.to_string().len() + body.len()) != len {
                len = len.to_string().len() + body.len();
            }
            data.push_str(&format!("{len}{body}"));
        }
        self.member(
            "././@PaxHeader",
            EntryType::XHeader,
            0o644,
            "",
            data.as_bytes(),
        )
    }

    fn dir(self, name: &str, mode: u32) -> Self {
        self.member(name, EntryType::Directory, mode, "", b"")
    }

    fn file(self, name: &str, data: &[u8]) -> Self {
        self.member(name, EntryType::Regular, 0o600, "", data)
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.member(name, EntryType::Symlink, 0o777, target, b"")
    }

    fn hard_link(self, name: &str, target: &str) -> Self {
        self.member(name, EntryType::Link, 0o600, target, b"")
    }

    fn end(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&[0; 1024]);
        self.0.resize(self.0.len().next_multiple_of(10240), 0);
        self.0
    }
}

/// A sandbox holding the target directory `root`, so escapes can be looked for next to it.
struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        Sandbox { dir }
    }

    fn root(&self) -> PathBuf {
        fs::canonicalize(self.dir.path().join("root")).unwrap()
    }

    fn extractor(&self) -> Extractor {
        Extractor::new(&self.root(), false).unwrap()
    }

    /// Unpacks and finishes; the error, if any.
    fn unpack(&self, tar: Vec<u8>) -> Result<Stats> {
        let e = self.extractor();
        let stats = e.extract(tar.as_slice())?;
        e.finish(None)?;
        Ok(stats)
    }

    /// Every path in the sandbox outside the target.
    fn outside(&self) -> Vec<String> {
        let mut found = Vec::new();
        for entry in fs::read_dir(self.dir.path()).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name != "root" {
                found.push(name);
            }
        }
        found
    }
}

fn mtime(path: &Path) -> (i64, i64) {
    let m = fs::symlink_metadata(path).unwrap();
    (m.mtime(), m.mtime_nsec())
}

#[test]
fn unpacks_a_barman_like_archive() {
    let sb = Sandbox::new();
    let tar = Tar::default()
        .pax(&[("mtime", "1795578638.845384")])
        .dir(".", 0o700)
        .pax(&[("mtime", "1795578638.5")])
        .file("./PG_VERSION", b"15\n")
        .dir("base", 0o750)
        .file("base/1/1259", &[7; 3000])
        .dir("pg_wal", 0o700)
        .symlink("conf.link", "PG_VERSION")
        .symlink("base/up", "../PG_VERSION")
        .hard_link("again", "./PG_VERSION")
        .member(
            "backup_label",
            EntryType::Regular,
            0o644,
            "",
            b"START WAL LOCATION",
        )
        .end();
    let stats = sb.unpack(tar).unwrap();
    assert_eq!(
        (stats.files, stats.bytes, stats.directories, stats.links),
        (3, 3021, 3, 3)
    );
    let root = sb.root();
    assert_eq!(fs::read(root.join("PG_VERSION")).unwrap(), b"15\n");
    assert_eq!(fs::read(root.join("base/1/1259")).unwrap().len(), 3000);
    assert_eq!(
        mtime(&root.join("PG_VERSION")),
        (1_795_578_638, 500_000_000)
    );
    // The root's attributes come from '.', applied after everything inside was written.
    assert_eq!(mtime(&root), (1_795_578_638, 845_384_000));
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o7777, 0o700);
    assert_eq!(
        fs::metadata(root.join("base")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(mtime(&root.join("base")), (1_700_000_000, 0));
    // A directory no member described is private.
    assert_eq!(
        fs::metadata(root.join("base/1")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        fs::read_link(root.join("conf.link")).unwrap(),
        Path::new("PG_VERSION")
    );
    assert_eq!(fs::read(root.join("base/up")).unwrap(), b"15\n");
    assert_eq!(
        fs::metadata(root.join("again")).unwrap().ino(),
        fs::metadata(root.join("PG_VERSION")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(root.join("backup_label")).unwrap().mode() & 0o777,
        0o644
    );
    assert!(sb.outside().is_empty());
}

fn refused(tar: Vec<u8>, expected: &str) {
    let sb = Sandbox::new();
    fs::write(sb.dir.path().join("victim"), b"original").unwrap();
    match sb.unpack(tar) {
        Err(ExtractError::Unsafe { reason, .. }) => {
            assert!(reason.contains(expected), "{reason:?} lacks {expected:?}")
        }
        other => panic!("expected a refusal ({expected}), got {other:?}"),
    }
    assert_eq!(sb.outside(), ["victim"]);
    assert_eq!(fs::read(sb.dir.path().join("victim")).unwrap(), b"original");
}

#[test]
fn refuses_parent_components() {
    refused(Tar::default().file("../victim", b"pwned").end(), "'..'");
    refused(
        Tar::default().file("base/../../victim", b"pwned").end(),
        "'..'",
    );
    refused(Tar::default().dir("..", 0o777).end(), "'..'");
}

#[test]
fn refuses_absolute_paths() {
    refused(
        Tar::default().file("/tmp/bcrs-absolute-member", b"x").end(),
        "absolute",
    );
    assert!(!Path::new("/tmp/bcrs-absolute-member").exists());
}

#[test]
fn refuses_symlinks_pointing_outside() {
    refused(Tar::default().symlink("etc", "/etc").end(), "absolute");
    refused(
        Tar::default().symlink("a/l", "../../victim").end(),
        "climbs out",
    );
    refused(Tar::default().symlink("l", "..").end(), "climbs out");
}

#[test]
fn refuses_writing_through_an_unpacked_symlink() {
    // Even a link that stays inside: nothing is ever written through a link.
    refused(
        Tar::default().symlink("l", ".").file("l/f", b"x").end(),
        "through the symbolic link 'l'",
    );
    refused(
        Tar::default().symlink("f", "g").file("f", b"x").end(),
        "through a symbolic link",
    );
    refused(
        Tar::default()
            .symlink("l", "d")
            .dir("d", 0o700)
            .dir("l/sub", 0o700)
            .end(),
        "through the symbolic link 'l'",
    );
}

#[test]
fn refuses_hard_links_outside_or_to_symlinks() {
    refused(
        Tar::default().hard_link("h", "../victim").end(),
        "hard link",
    );
    refused(
        Tar::default().hard_link("h", "/etc/passwd").end(),
        "hard link",
    );
    refused(
        Tar::default().symlink("s", "x").hard_link("h", "s").end(),
        "symbolic link 's'",
    );
}

#[test]
fn refuses_links_that_escape_through_other_links() {
    // s resolves to the root, so t (lexically inside) resolves to the root's parent.
    let tar = Tar::default()
        .dir("a/b/c", 0o700)
        .symlink("a/b/c/s", "../../..")
        .symlink("t", "a/b/c/s/..")
        .end();
    let sb = Sandbox::new();
    let e = sb.extractor();
    e.extract(tar.as_slice()).unwrap();
    match e.finish(None) {
        Err(ExtractError::Unsafe { entry, reason }) => {
            assert_eq!(entry, "t");
            assert!(reason.contains("through other links"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        fs::symlink_metadata(sb.root().join("t")).is_err(),
        "the link must be removed"
    );
}

#[test]
fn parts_unpacked_at_once_keep_directory_attributes() {
    let sb = Sandbox::new();
    let e = Arc::new(sb.extractor());
    let first = Tar::default()
        .dir(".", 0o700)
        .dir("base", 0o750)
        .dir("base/5", 0o700)
        .end();
    let second = Tar::default().file("base/5/16385", &[1; 100_000]).end();
    std::thread::scope(|s| {
        for tar in [first, second] {
            let e = e.clone();
            s.spawn(move || e.extract(tar.as_slice()).unwrap());
        }
    });
    e.finish(None).unwrap();
    let root = sb.root();
    assert_eq!(mtime(&root.join("base/5")), (1_700_000_000, 0));
    assert_eq!(
        fs::metadata(root.join("base")).unwrap().mode() & 0o7777,
        0o750
    );
    assert_eq!(fs::read(root.join("base/5/16385")).unwrap().len(), 100_000);
}

#[test]
fn held_back_files_appear_only_when_released() {
    let sb = Sandbox::new();
    let e = sb.extractor().hold_back("global/pg_control");
    let tar = Tar::default()
        .dir("global", 0o700)
        .file("global/pg_control", b"control")
        .file("global/1262", b"x")
        .end();
    e.extract(tar.as_slice()).unwrap();
    e.finish(None).unwrap();
    let root = sb.root();
    assert!(!root.join("global/pg_control").exists());
    assert!(root.join("global/pg_control.barman-cloud-partial").exists());
    e.release().unwrap();
    assert_eq!(mtime(&root.join("global")), (1_700_000_000, 0));
    assert_eq!(
        fs::read(root.join("global/pg_control")).unwrap(),
        b"control"
    );
    assert_eq!(fs::read_dir(root.join("global")).unwrap().count(), 2);
}

#[test]
fn a_truncated_archive_is_an_error() {
    let sb = Sandbox::new();
    let tar = Tar::default().file("f", &[1; 5000]).end();
    let cut = &tar[..512 + 2048];
    assert!(matches!(
        sb.extractor().extract(cut),
        Err(ExtractError::Read(_))
    ));
}

#[test]
fn owners_by_name_then_number_when_root() {
    if !running_as_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let sb = Sandbox::new();
    let mut tar = Tar::default();
    for (name, uname, uid) in [
        ("by-name", "nobody", 4242),
        ("by-number", "no-such-user-bcrs", 4343),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(0);
        h.set_mode(0o640);
        h.set_uid(uid);
        h.set_gid(4444);
        h.set_username(uname).unwrap();
        h.set_cksum();
        tar.0.extend_from_slice(h.as_bytes());
    }
    let e = Extractor::new(&sb.root(), true).unwrap();
    e.extract(tar.end().as_slice()).unwrap();
    e.finish(None).unwrap();
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(
        fs::metadata(sb.root().join("by-name")).unwrap().uid(),
        nobody
    );
    let m = fs::metadata(sb.root().join("by-number")).unwrap();
    assert_eq!((m.uid(), m.gid()), (4343, 4444));
}

#[test]
fn pax_times() {
    let t = |s| parse_pax_time(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
    assert_eq!(
        t("1795578638.845384"),
        Some(Duration::new(1_795_578_638, 845_384_000))
    );
    assert_eq!(t("12"), Some(Duration::new(12, 0)));
    assert_eq!(t("1.1234567891"), Some(Duration::new(1, 123_456_789)));
    assert_eq!(parse_pax_time("x"), None);
    assert_eq!(parse_pax_time("1.x"), None);
}

#[test]
fn an_archive_needs_its_end_of_archive_marker() {
    let members = Tar::default().file("a", &[1; 700]).file("b", b"x");
    let whole = members.0.clone();
    let python = members.end();
    // The tar crate's own builder writes the two zero blocks and no padding.
    let mut tar_crate = whole.clone();
    tar_crate.extend_from_slice(&[0; 1024]);
    for ok in [&python, &tar_crate] {
        let sb = Sandbox::new();
        assert_eq!(sb.unpack(ok.clone()).unwrap().files, 2);
    }
    // Cut at a member boundary (after "a"), after the last member, in the first zero block,
    // after it, inside the second one.
    let after_a = 512 + 1024;
    for len in [
        after_a,
        whole.len(),
        whole.len() + 100,
        whole.len() + 512,
        whole.len() + 1023,
    ] {
        let sb = Sandbox::new();
        let err = sb.extractor().extract(&python[..len]).unwrap_err();
        assert!(
            matches!(
                err,
                ExtractError::Truncated("ends without its end-of-archive marker")
            ) || (len == whole.len() + 100 && matches!(err, ExtractError::Read(_))),
            "cut at {len}: {err:?}"
        );
    }
    // A zeroed header hides the members after it: refused, not skipped.
    let mut zeroed = python.clone();
    zeroed[after_a..after_a + 512].fill(0);
    let sb = Sandbox::new();
    assert!(matches!(
        sb.extractor().extract(zeroed.as_slice()),
        Err(ExtractError::Truncated(reason)) if reason.contains("data after a zero block")
    ));
}

#[test]
fn required_members_are_reported_until_unpacked() {
    let sb = Sandbox::new();
    let e = sb
        .extractor()
        .require("backup_label")
        .require("global/pg_control");
    let first = Tar::default()
        .dir("global", 0o700)
        .file("global/pg_control", b"c")
        .end();
    e.extract(first.as_slice()).unwrap();
    assert_eq!(e.missing(), [PathBuf::from("backup_label")]);
    e.extract(Tar::default().file("./backup_label", b"l").end().as_slice())
        .unwrap();
    assert!(e.missing().is_empty());
}
