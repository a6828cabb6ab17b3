//! Which archived WAL files become unnecessary when a backup is deleted: Barman's rules for
//! object stores (`_remove_wals_for_backup`, which has no xlog.db), as pure functions of the
//! catalog and the archive listing.

use std::collections::{BTreeMap, BTreeSet};

use super::Keep;
use crate::catalog::Status;
use crate::layout::BackupId;
use crate::postgres::{WalKind, WalName, parse_hash_dir};

/// What WAL cleanup needs to know of one catalogued backup.
#[derive(Debug, Clone)]
pub struct WalBackup {
    /// The backup ID.
    pub id: BackupId,
    /// Its `backup.info` status.
    pub status: Status,
    /// The timeline it was taken on.
    pub timeline: Option<u32>,
    /// The first WAL it needs.
    pub begin_wal: Option<WalName>,
    /// The last WAL it needs.
    pub end_wal: Option<WalName>,
    /// Its keep annotation.
    pub keep: Option<Keep>,
}

/// What to delete: whole hash directories (S3's shortcut) and single WAL files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalCleanup {
    /// Key prefixes (`.../wals/TTTTTTTTLLLLLLLL/`) whose every object can go.
    pub prefixes: Vec<String>,
    /// `(name, key)` of each WAL file to delete outside those prefixes, sorted by key.
    pub wals: Vec<(WalName, String)>,
}

/// An inclusive range of WAL names a keep:standalone backup needs.
pub type WalRange = (WalName, WalName);

fn usable(b: &WalBackup) -> bool {
    matches!(b.status, Status::Done | Status::WaitingForWals)
}

fn sorted(catalog: &[WalBackup]) -> Vec<&WalBackup> {
    let mut sorted: Vec<&WalBackup> = catalog.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted
}

/// Whether deleting `deleted` frees any WAL (Barman's `should_remove_wals`), and which
/// ranges must stay anyway: `None` when an older backup still needs all the WAL after it
/// (one without keep or with keep:full, or with `skip_if_standalone`, any keep:standalone
/// one); otherwise the ranges of the older keep:standalone backups. A `-b` delete passes
/// `skip_if_standalone`; retention does not.
pub fn protected_ranges(
    catalog: &[WalBackup],
    deleted: &str,
    skip_if_standalone: bool,
) -> Option<Vec<WalRange>> {
    let sorted = sorted(catalog);
    let position = sorted.iter().position(|b| b.id == deleted)?;
    let mut ranges = Vec::new();
    for previous in sorted[..position].iter().rev().filter(|b| usable(b)) {
        match previous.keep {
            Some(Keep::Standalone) if !skip_if_standalone => {
                if let (Some(b), Some(e)) = (&previous.begin_wal, &previous.end_wal) {
                    ranges.push((b.clone(), e.clone()));
                }
            }
            _ => return None,
        }
    }
    Some(ranges)
}

/// The backup whose `begin_wal` bounds the WAL deleting `deleted` may remove: the next
/// newer DONE (or WAITING_FOR_WALS) backup, or `deleted` itself when there is none. No WAL
/// file named at or after that `begin_wal` is ever removed.
pub fn remove_until<'a>(catalog: &'a [WalBackup], deleted: &str) -> Option<&'a WalBackup> {
    let sorted = sorted(catalog);
    let position = sorted.iter().position(|b| b.id == deleted)?;
    sorted[position + 1..]
        .iter()
        .find(|b| usable(b))
        .copied()
        .or(Some(sorted[position]))
}

/// The WAL to remove after deleting backup `deleted` from `catalog` (which still lists it).
/// `wals` maps each WAL name of the archive to its key; `prefixes` are the archive's hash
/// directories as key prefixes ending in `/` when the provider can delete a whole prefix
/// (S3), else `None`. See [`protected_ranges`] for `skip_if_standalone`.
///
/// The WAL kept follows Barman exactly: history files always stay; so does every file on a
/// timeline another backup uses (the deleted one's included: Barman compares backups by
/// identity and never finds it), unless it is the timeline of the backup WAL is removed up
/// to; so does every file inside a protected range (a backup label by the segment it names);
/// the rest goes when its name sorts before that backup's `begin_wal`.
pub fn wal_cleanup(
    catalog: &[WalBackup],
    deleted: &str,
    wals: &BTreeMap<WalName, String>,
    prefixes: Option<&[String]>,
    skip_if_standalone: bool,
) -> WalCleanup {
    let Some(protected) = protected_ranges(catalog, deleted, skip_if_standalone) else {
        return WalCleanup::default();
    };
    let Some(remove_until) = remove_until(catalog, deleted) else {
        return WalCleanup::default();
    };
    let Some(until_wal) = remove_until.begin_wal.as_ref() else {
        return WalCleanup::default();
    };
    let protected_timelines: BTreeSet<u32> = catalog
        .iter()
        .filter_map(|b| b.timeline)
        .filter(|t| Some(*t) != remove_until.timeline)
        .collect();

    let in_range = |tli: u32, log: u32| {
        protected.iter().any(|(b, e)| {
            tli >= b.timeline() && log >= b.log() && tli <= e.timeline() && log <= e.log()
        })
    };
    let mut cleanup = WalCleanup::default();
    for prefix in prefixes.into_iter().flatten() {
        let dir = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        let Some((tli, log)) = parse_hash_dir(dir) else {
            tracing::warn!("Ignoring malformed WAL object prefix: {prefix}");
            continue;
        };
        if protected_timelines.contains(&tli) || in_range(tli, log) {
            continue;
        }
        if tli == until_wal.timeline() && log < until_wal.log() {
            cleanup.prefixes.push(prefix.clone());
        }
    }
    for (name, key) in wals {
        if name.kind() == WalKind::History {
            continue;
        }
        if cleanup.prefixes.iter().any(|p| key.starts_with(p.as_str())) {
            continue;
        }
        if protected_timelines.contains(&name.timeline()) {
            continue;
        }
        // A backup label is compared by the segment it names; a partial by its full name,
        // as Barman does.
        let segment = match name.kind() {
            WalKind::Backup => name.segment_name().unwrap_or(name.as_str()),
            _ => name.as_str(),
        };
        if protected
            .iter()
            .any(|(b, e)| segment >= b.as_str() && segment <= e.as_str())
        {
            continue;
        }
        if name < until_wal {
            cleanup.wals.push((name.clone(), key.clone()));
        }
    }
    cleanup.wals.sort_by(|a, b| a.1.cmp(&b.1));
    cleanup
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(id: &str, begin: &str, end: &str, keep: Option<Keep>) -> WalBackup {
        WalBackup {
            id: id.into(),
            status: Status::Done,
            timeline: Some(1),
            begin_wal: Some(wal(&format!("0000000100000000000000{begin}"))),
            end_wal: Some(wal(&format!("0000000100000000000000{end}"))),
            keep,
        }
    }

    fn wal(name: &str) -> WalName {
        WalName::parse(name).unwrap()
    }

    /// Where an archive keeps `name` (compressed for segments, as a mix would be).
    fn key(name: &str) -> String {
        if name.ends_with(".history") {
            format!("pg/wals/{name}")
        } else {
            format!("pg/wals/{}/{name}.gz", &name[..16])
        }
    }

    fn archive(names: &[String]) -> BTreeMap<WalName, String> {
        names.iter().map(|n| (wal(n), key(n))).collect()
    }

    fn names() -> Vec<String> {
        let mut names: Vec<String> = (1..=0x14)
            .map(|n| format!("0000000100000000000000{n:02X}"))
            .collect();
        names.push("000000010000000000000003.00000028.backup".into());
        names.push("00000001000000000000000C.partial".into());
        names.push("00000002.history".into());
        names
    }

    fn deleted_names(c: &WalCleanup) -> Vec<&str> {
        c.wals.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn deleting_the_oldest_removes_wal_up_to_the_next_backup() {
        let catalog = [
            backup("b1", "03", "03", None),
            backup("b2", "08", "08", None),
            backup("b3", "10", "10", None),
        ];
        let c = wal_cleanup(&catalog, "b1", &archive(&names()), None, true);
        let deleted = deleted_names(&c);
        assert_eq!(deleted.first().unwrap(), &"000000010000000000000001");
        assert_eq!(deleted.last().unwrap(), &"000000010000000000000007");
        assert!(deleted.contains(&"000000010000000000000003.00000028.backup"));
        assert!(!deleted.iter().any(|w| w.ends_with(".history")));
        assert_eq!(
            c.wals[0].1,
            "pg/wals/0000000100000000/000000010000000000000001.gz"
        );
    }

    #[test]
    fn an_older_backup_without_keep_or_with_keep_full_stops_cleanup() {
        for keep in [None, Some(Keep::Full)] {
            let catalog = [
                backup("b1", "03", "03", keep),
                backup("b2", "08", "08", None),
                backup("b3", "10", "10", None),
            ];
            assert_eq!(protected_ranges(&catalog, "b2", false), None);
            let c = wal_cleanup(&catalog, "b2", &archive(&names()), None, false);
            assert_eq!(c, WalCleanup::default());
        }
    }

    #[test]
    fn an_older_standalone_backup_keeps_only_its_own_range() {
        let catalog = [
            backup("b1", "03", "04", Some(Keep::Standalone)),
            backup("b2", "08", "08", None),
            backup("b3", "10", "10", None),
        ];
        assert_eq!(
            wal_cleanup(&catalog, "b2", &archive(&names()), None, true),
            WalCleanup::default(),
            "-b keeps WAL when older backups are standalone"
        );
        let c = wal_cleanup(&catalog, "b2", &archive(&names()), None, false);
        let deleted = deleted_names(&c);
        assert!(deleted.contains(&"000000010000000000000002"));
        assert!(!deleted.contains(&"000000010000000000000003"));
        assert!(!deleted.contains(&"000000010000000000000003.00000028.backup"));
        assert!(!deleted.contains(&"000000010000000000000004"));
        assert!(deleted.contains(&"00000001000000000000000C.partial"));
        assert_eq!(deleted.last().unwrap(), &"00000001000000000000000F");
    }

    #[test]
    fn other_timelines_are_protected_and_prefixes_go_whole() {
        let mut b3 = backup("b3", "10", "10", None);
        b3.timeline = Some(2);
        b3.begin_wal = Some(wal("000000020000000100000010"));
        let mut b2 = backup("b2", "08", "08", None);
        b2.begin_wal = Some(wal("000000010000000100000008"));
        let catalog = [backup("b1", "03", "03", None), b2, b3];
        let mut names = names();
        names.push("000000020000000000000015".into());
        names.push("000000010000000100000001".into());
        let prefixes = [
            "pg/wals/0000000100000000/".to_string(),
            "pg/wals/0000000100000001/".to_string(),
            "pg/wals/0000000200000000/".to_string(),
            "pg/wals/junk/".to_string(),
        ];
        let c = wal_cleanup(&catalog, "b1", &archive(&names), Some(&prefixes), true);
        // remove_until is b2 (timeline 1, log 1): timeline 2 is protected, log 0 goes whole.
        assert_eq!(c.prefixes, ["pg/wals/0000000100000000/"]);
        assert_eq!(deleted_names(&c), ["000000010000000100000001"]);
        let c = wal_cleanup(&catalog, "b2", &archive(&names), Some(&prefixes), true);
        assert_eq!(c, WalCleanup::default(), "b1 is older and not kept");
    }

    #[test]
    fn the_deleted_backups_own_timeline_stays_protected_as_in_barman() {
        // Barman builds the protected set comparing backups by identity, and the deleted
        // backup is a fresh copy: its timeline is protected unless WAL is removed up to a
        // backup on that same timeline.
        let b1 = backup("b1", "03", "03", None);
        let mut b2 = backup("b2", "08", "08", None);
        b2.timeline = Some(2);
        b2.begin_wal = Some(wal("000000020000000000000008"));
        let mut names = names();
        names.push("000000020000000000000007".into());
        let c = wal_cleanup(&[b1, b2], "b1", &archive(&names), None, true);
        assert_eq!(deleted_names(&c), ["000000020000000000000007"]);
    }
}
