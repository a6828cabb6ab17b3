//! Which archived WAL files become unnecessary when a backup is deleted (Barman's rules,
//! without an xlog.db): a pure function of the catalog.

use std::collections::BTreeSet;

use super::Keep;
use crate::catalog::Status;

/// What WAL cleanup needs to know of one catalogued backup.
#[derive(Debug, Clone)]
pub struct WalBackup {
    pub id: String,
    pub status: Status,
    pub timeline: Option<u32>,
    pub begin_wal: Option<String>,
    pub end_wal: Option<String>,
    pub keep: Option<Keep>,
}

/// What to delete: whole hash directories (S3's shortcut) and single WAL names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalCleanup {
    /// `TTTTTTTTLLLLLLLL` directories whose every object can go.
    pub hash_dirs: Vec<String>,
    /// WAL names (no compression suffix), sorted, outside those directories.
    pub wals: Vec<String>,
}

fn usable(b: &WalBackup) -> bool {
    matches!(b.status, Status::Done | Status::WaitingForWals)
}

fn timeline_of(name: &str) -> Option<u32> {
    name.get(..8).and_then(|t| u32::from_str_radix(t, 16).ok())
}

fn log_of(name: &str) -> Option<u32> {
    name.get(8..16)
        .and_then(|t| u32::from_str_radix(t, 16).ok())
}

/// The WAL to remove after deleting backup `deleted` from `catalog` (which still lists it).
/// `wal_names` are the catalog's WAL names; `hash_dirs` are the WAL directories when the
/// provider supports deleting a whole prefix (S3), else `None`. With
/// `skip_if_standalone` (a `-b` delete), WAL is kept when the older backups are all
/// keep:standalone; retention passes `false`.
pub fn wal_cleanup(
    catalog: &[WalBackup],
    deleted: &str,
    wal_names: &[String],
    hash_dirs: Option<&[String]>,
    skip_if_standalone: bool,
) -> WalCleanup {
    let mut sorted: Vec<&WalBackup> = catalog.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let Some(position) = sorted.iter().position(|b| b.id == deleted) else {
        return WalCleanup::default();
    };
    let deleted_backup = sorted[position];

    // Walk older backups: any usable one without keep, or with keep:full, needs all WAL
    // after it; keep:standalone ones need only their own range.
    let mut protected: Vec<(String, String)> = Vec::new();
    for previous in sorted[..position].iter().rev().filter(|b| usable(b)) {
        match previous.keep {
            Some(Keep::Standalone) if !skip_if_standalone => {
                if let (Some(b), Some(e)) = (&previous.begin_wal, &previous.end_wal) {
                    protected.push((b.clone(), e.clone()));
                }
            }
            _ => return WalCleanup::default(),
        }
    }

    let remove_until = sorted[position + 1..]
        .iter()
        .find(|b| usable(b))
        .copied()
        .unwrap_or(deleted_backup);
    let Some(until_wal) = remove_until.begin_wal.as_deref() else {
        return WalCleanup::default();
    };
    let protected_timelines: BTreeSet<u32> = sorted
        .iter()
        .filter(|b| b.id != deleted)
        .filter_map(|b| b.timeline)
        .filter(|t| Some(*t) != remove_until.timeline)
        .collect();

    let in_range = |tli: u32, log: u32| {
        protected.iter().any(|(b, e)| {
            let (Some(bt), Some(bl), Some(et), Some(el)) =
                (timeline_of(b), log_of(b), timeline_of(e), log_of(e))
            else {
                return true;
            };
            tli >= bt && log >= bl && tli <= et && log <= el
        })
    };
    let (until_tli, until_log) = (timeline_of(until_wal), log_of(until_wal));
    let mut cleanup = WalCleanup::default();
    for dir in hash_dirs.into_iter().flatten() {
        let (Some(tli), Some(log)) = (timeline_of(dir), log_of(dir)) else {
            tracing::warn!("Ignoring malformed WAL object prefix: {dir}");
            continue;
        };
        if dir.len() != 16 || protected_timelines.contains(&tli) || in_range(tli, log) {
            continue;
        }
        if Some(tli) == until_tli && until_log.is_some_and(|l| log < l) {
            cleanup.hash_dirs.push(dir.clone());
        }
    }
    for name in wal_names {
        if name.ends_with(".history") {
            continue;
        }
        if cleanup
            .hash_dirs
            .iter()
            .any(|d| name.len() >= 16 && name[..16].eq_ignore_ascii_case(d))
        {
            continue;
        }
        if timeline_of(name).is_some_and(|t| protected_timelines.contains(&t)) {
            continue;
        }
        // A backup label is compared by the segment it names.
        let segment = if name.ends_with(".backup") {
            &name[..24.min(name.len())]
        } else {
            name.as_str()
        };
        if protected
            .iter()
            .any(|(b, e)| segment >= b.as_str() && segment <= e.as_str())
        {
            continue;
        }
        if name.as_str() < until_wal {
            cleanup.wals.push(name.clone());
        }
    }
    cleanup.wals.sort();
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
            begin_wal: Some(format!("0000000100000000000000{begin}")),
            end_wal: Some(format!("0000000100000000000000{end}")),
            keep,
        }
    }

    fn wals() -> Vec<String> {
        let mut names: Vec<String> = (1..=0x14)
            .map(|n| format!("0000000100000000000000{n:02X}"))
            .collect();
        names.push("000000010000000000000003.00000028.backup".into());
        names.push("00000001000000000000000C.partial".into());
        names.push("00000002.history".into());
        names.sort();
        names
    }

    #[test]
    fn deleting_the_oldest_removes_wal_up_to_the_next_backup() {
        let catalog = [
            backup("b1", "03", "03", None),
            backup("b2", "08", "08", None),
            backup("b3", "10", "10", None),
        ];
        let c = wal_cleanup(&catalog, "b1", &wals(), None, true);
        assert_eq!(c.wals.first().unwrap(), "000000010000000000000001");
        assert_eq!(c.wals.last().unwrap(), "000000010000000000000007");
        assert!(
            c.wals
                .contains(&"000000010000000000000003.00000028.backup".to_string())
        );
        assert!(!c.wals.iter().any(|w| w.ends_with(".history")));
    }

    #[test]
    fn an_older_backup_without_keep_or_with_keep_full_stops_cleanup() {
        for keep in [None, Some(Keep::Full)] {
            let catalog = [
                backup("b1", "03", "03", keep),
                backup("b2", "08", "08", None),
                backup("b3", "10", "10", None),
            ];
            let c = wal_cleanup(&catalog, "b2", &wals(), None, false);
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
            wal_cleanup(&catalog, "b2", &wals(), None, true),
            WalCleanup::default(),
            "-b keeps WAL when older backups are standalone"
        );
        let c = wal_cleanup(&catalog, "b2", &wals(), None, false);
        assert!(c.wals.contains(&"000000010000000000000002".to_string()));
        assert!(!c.wals.contains(&"000000010000000000000003".to_string()));
        assert!(
            !c.wals
                .contains(&"000000010000000000000003.00000028.backup".to_string())
        );
        assert!(!c.wals.contains(&"000000010000000000000004".to_string()));
        assert!(
            c.wals
                .contains(&"00000001000000000000000C.partial".to_string())
        );
        assert_eq!(c.wals.last().unwrap(), "00000001000000000000000F");
    }

    #[test]
    fn other_timelines_are_protected_and_prefixes_go_whole() {
        let mut b3 = backup("b3", "10", "10", None);
        b3.timeline = Some(2);
        b3.begin_wal = Some("000000020000000100000010".into());
        let catalog = [
            backup("b1", "03", "03", None),
            backup("b2", "08", "08", None),
            b3,
        ];
        let mut names = wals();
        names.push("000000020000000000000015".into());
        let dirs = [
            "0000000100000000".to_string(),
            "0000000200000000".to_string(),
        ];
        let c = wal_cleanup(&catalog, "b1", &names, Some(&dirs), true);
        // remove_until is b2 (timeline 1): timeline 2 is protected.
        assert!(
            c.hash_dirs.is_empty(),
            "b2's log is 0: no whole directory predates it"
        );
        assert!(!c.wals.iter().any(|w| w.starts_with("00000002")));
        let c = wal_cleanup(&catalog, "b2", &names, Some(&dirs), true);
        assert_eq!(c, WalCleanup::default(), "b1 is older and not kept");
    }
}
