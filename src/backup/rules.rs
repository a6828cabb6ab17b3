//! Which paths a backup leaves out: Barman's rsync-like rules, matched the way Barman matches
//! them, quirks included, so both tools put the same members in the tar.
//!
//! A rule starting with `/` is anchored at the archive root; any other rule matches a path
//! suffix. `*` stays inside one path component, `**` crosses `/`, `?` is any one character;
//! nothing else is special (so `[0-9]` is literal text, as in Barman's translation).

/// Rules for PGDATA (on top of [`COMMON`]).
pub(super) const PGDATA: [&str; 5] = [
    "/pg_log/*",
    "/log/*",
    "/pg_xlog/*",
    "/pg_wal/*",
    // Added at the end, after the walk.
    "/global/pg_control",
];

/// Rules for PGDATA and tablespaces: what PostgreSQL itself leaves out of base backups.
pub(super) const COMMON: [&str; 16] = [
    "pgsql_tmp*",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "pg_internal.init",
    "postmaster.pid",
    "postmaster.opts",
    "recovery.conf",
    "standby.signal",
    "**/[0-9]*/t[0-9]*_[0-9]*",
    "pg_dynshmem/*",
    "pg_notify/*",
    "pg_replslot/*",
    "pg_serial/*",
    "pg_stat_tmp/*",
    "pg_snapshots/*",
    "pg_subtrans/*",
];

/// An include/exclude rule set for one directory tree.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    exclude: Vec<String>,
    include: Vec<String>,
}

impl Rules {
    /// The rules for PGDATA, plus `extra` exclusions (tablespace links and locations).
    pub fn pgdata(extra: impl IntoIterator<Item = String>) -> Rules {
        let mut exclude: Vec<String> = PGDATA.iter().map(|r| r.to_string()).collect();
        exclude.extend(common());
        exclude.extend(extra);
        Rules {
            exclude,
            include: Vec::new(),
        }
    }

    /// The rules for a tablespace directory: only `PG_<major>_*` at its top.
    pub fn tablespace(major: &str) -> Rules {
        let mut exclude = vec!["/*".to_string()];
        exclude.extend(common());
        Rules {
            exclude,
            include: vec![format!("/PG_{major}_*")],
        }
    }

    /// Whether `path` (relative to the root, as a tar member name) goes in the archive:
    /// an include match keeps it, else an exclude match drops it, else it is kept.
    pub fn allows(&self, path: &str, is_dir: bool) -> bool {
        if matches_any(&self.include, path, is_dir) {
            return true;
        }
        !matches_any(&self.exclude, path, is_dir)
    }
}

fn common() -> impl Iterator<Item = String> {
    COMMON.iter().map(|r| r.to_string())
}

fn matches_any(rules: &[String], path: &str, is_dir: bool) -> bool {
    rules.iter().any(|rule| {
        let rule = match rule.strip_suffix('/') {
            Some(dir_rule) if is_dir => dir_rule,
            Some(_) => return false,
            None => rule,
        };
        match rule.strip_prefix('/') {
            Some(anchored) => glob(anchored.as_bytes(), path.as_bytes()),
            None => {
                glob(rule.as_bytes(), path.as_bytes())
                    || glob(format!("**/{rule}").as_bytes(), path.as_bytes())
            }
        }
    })
}

/// Whole-string match of `pattern` against `text`.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern {
        [] => text.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        [b'*', rest @ ..] => {
            let limit = text.iter().position(|&c| c == b'/').unwrap_or(text.len());
            (0..=limit).any(|i| glob(rest, &text[i..]))
        }
        [b'?', rest @ ..] => !text.is_empty() && glob(rest, &text[1..]),
        [c, rest @ ..] => text.first() == Some(c) && glob(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgdata_rules_keep_and_drop_what_barman_does() {
        let r = Rules::pgdata(["/pg_tblspc/16384".to_string()]);
        for (path, is_dir, kept) in [
            (".", true, true),
            ("./PG_VERSION", false, true),
            ("./postmaster.pid", false, false),
            ("./postmaster.opts", false, false),
            ("./standby.signal", false, false),
            ("./recovery.signal", false, true),
            ("./backup_label.old", false, true),
            ("pg_wal", true, true),
            ("pg_wal/000000010000000000000001", false, false),
            // Barman drops the directory entry but walks into it: its files are kept.
            ("pg_wal/archive_status", true, false),
            (
                "pg_wal/archive_status/000000010000000000000001.done",
                false,
                true,
            ),
            ("global/pg_control", false, false),
            ("global/pg_filenode.map", false, true),
            ("base/1/pg_internal.init", false, false),
            ("base/pgsql_tmp", true, false),
            ("base/pgsql_tmp/pgsql_tmp123.0", false, false),
            ("pg_replslot", true, true),
            ("pg_replslot/slot1", true, false),
            ("pg_stat_tmp/global.stat", false, false),
            ("pg_tblspc", true, true),
            ("pg_tblspc/16384", true, false),
            ("log/postgresql.log", false, false),
            ("base/5/16385", false, true),
            // `[0-9]` is literal in Barman's patterns: temporary relations are not matched.
            ("base/5/t3_16390", false, true),
        ] {
            assert_eq!(r.allows(path, is_dir), kept, "{path}");
        }
    }

    #[test]
    fn tablespace_rules_keep_only_the_version_directory() {
        let r = Rules::tablespace("15");
        assert!(!r.allows(".", true));
        assert!(r.allows("PG_15_202209061", true));
        assert!(!r.allows("PG_14_202107181", true));
        assert!(r.allows("PG_15_202209061/5/16385", false));
        assert!(!r.allows("PG_15_202209061/pgsql_tmp", true));
    }

    #[test]
    fn globs_follow_barmans_translation() {
        assert!(glob(b"a/*", b"a/b"));
        assert!(!glob(b"a/*", b"a/b/c"));
        assert!(glob(b"**/c", b"a/b/c"));
        assert!(glob(b"a?c", b"a/c"));
        assert!(glob(b"[0-9]", b"[0-9]"));
        assert!(!glob(b"[0-9]", b"5"));
    }
}
