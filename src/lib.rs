//! barman-cloud-rs: a drop-in replacement for Barman's cloud tools.
//!
//! Each `barman-cloud-*` binary is a few lines that call [`cli`], which parses Barman's flags
//! and calls one library operation; everything a command does is callable without the CLI.
//! The objects written are Barman Cloud's ([`layout`]), byte for byte, on every provider
//! ([`storage`]).
//!
//! # The four flows
//!
//! ```text
//! archive   PostgreSQL archive_command ─► wal::archive / wal::archive_with_prefetch
//!           name checked (postgres::WalName) ─► compressed (compress) ─► conditional
//!           create at layout::wal_key (storage) ─► exit 0 only once the store has it;
//!           an identical copy already stored is success, a different one a conflict
//!
//! restore   PostgreSQL restore_command ─► wal::restore
//!           spool (prefetched earlier) or the key found by listing the hash directory
//!           ─► streamed, decoded and checked (checksums, segment size) ─► written by
//!           durable::write_atomically (a temporary name, renamed once whole and synced);
//!           the next segments prefetched into the spool
//!
//! backup    backup::backup: pg (pg_backup_start) ─► STARTED backup.info ─► backup::walk
//!           PGDATA and tablespaces ─► tar parts, compressed, uploaded in parallel
//!           (multipart) ─► pg_backup_stop ─► backup_label last ─► DONE backup.info last
//!           (FAILED with the reason on any error)
//!
//!           restore::restore: catalog (choose the backup) ─► plan the parts ─► download,
//!           decompress, unpack each part ─► check the backup is whole ─► tablespace links,
//!           recovery settings, fsync ─► global/pg_control put in place last
//!
//! retention retention::evaluate(catalog, policy, now) is pure ─► retention::Deleter
//!           removes each obsolete backup (tarballs, then backup.info) and the WAL no
//!           older backup needs (retention::wal_cleanup, also pure)
//! ```
//!
//! # Layers
//!
//! The modules form layers, and a module imports only from the layers below it (a test below
//! reads every `crate::` path in `src/` to keep this true):
//!
//! 1. leaves, which import nothing else from the crate: [`postgres`] (WAL names, LSNs),
//!    [`python`] (what Barman's Python writes), [`buffer`] (whole files in memory),
//!    [`compress`], [`durable`], [`progress`], [`redact`], [`task`] (blocking work off the
//!    async threads);
//! 2. [`error`] and [`layout`] (where Barman Cloud puts each object);
//! 3. [`storage`];
//! 4. [`catalog`] and [`pg`];
//! 5. the operations: [`wal`], [`backup`], [`restore`], [`retention`];
//! 6. [`verify`], which reads a backup as the restore would and its WAL as wal-restore
//!    would;
//! 7. [`cli`] and the fuzz entry points.

pub mod backup;
pub mod buffer;
pub mod catalog;
#[cfg(feature = "cli")]
pub mod cli;
pub mod compress;
pub mod durable;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod layout;
pub mod pg;
pub mod postgres;
pub mod progress;
pub mod python;
pub mod redact;
pub mod restore;
pub mod retention;
pub mod storage;
pub mod task;
pub mod verify;
pub mod wal;

#[cfg(test)]
mod layering {
    //! Reads the sources at test time, so a new `use` that points up the graph fails here.
    //! It sees `crate::` paths, the way this crate spells every import across modules; a
    //! `super::` that climbs out of a top-level module would go unseen.

    use std::collections::{BTreeMap, BTreeSet};
    use std::fs;
    use std::path::Path;

    /// The layers of the crate docs, lowest first.
    const LAYERS: &[&[&str]] = &[
        &[
            "buffer", "compress", "durable", "postgres", "progress", "python", "redact", "task",
        ],
        &["error", "layout"],
        &["storage"],
        &["catalog", "pg"],
        &["backup", "restore", "retention", "wal"],
        &["verify"],
        &["cli", "fuzzing"],
    ];

    fn layer_of(module: &str) -> Option<usize> {
        LAYERS.iter().position(|layer| layer.contains(&module))
    }

    /// The top-level modules that `text` names through `crate::` outside comment lines,
    /// including each name of a `crate::{a, b::c}` group.
    fn crate_modules(text: &str) -> BTreeSet<String> {
        let ident = |s: &str| {
            let end = s
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(s.len());
            s[..end].to_string()
        };
        let mut found = BTreeSet::new();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let before = line[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let rest = &line[at + "crate::".len()..];
                match rest.strip_prefix('{') {
                    Some(group) => {
                        let mut depth = 0;
                        let mut start = 0;
                        for (i, c) in group.char_indices() {
                            match c {
                                '{' => depth += 1,
                                '}' if depth == 0 => {
                                    found.insert(ident(group[start..i].trim()));
                                    break;
                                }
                                '}' => depth -= 1,
                                ',' if depth == 0 => {
                                    found.insert(ident(group[start..i].trim()));
                                    start = i + 1;
                                }
                                _ => {}
                            }
                        }
                    }
                    None => {
                        found.insert(ident(rest));
                    }
                }
            }
        }
        found.remove("");
        found
    }

    /// Each top-level module (`src/<m>.rs` or `src/<m>/…`) and the modules it names.
    fn edges() -> BTreeMap<String, BTreeSet<String>> {
        fn walk(dir: &Path, module: &str, edges: &mut BTreeMap<String, BTreeSet<String>>) {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap().to_string();
                let module = match module {
                    "" => name.strip_suffix(".rs").unwrap_or(&name),
                    m => m,
                };
                if path.is_dir() {
                    walk(&path, module, edges);
                } else if name.ends_with(".rs") {
                    let text = fs::read_to_string(&path).unwrap();
                    let named = edges.entry(module.to_string()).or_default();
                    named.extend(crate_modules(&text));
                }
            }
        }
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut edges = BTreeMap::new();
        walk(&src, "", &mut edges);
        // The binaries are outside the library, and this file is the graph's root.
        edges.remove("bin");
        edges.remove("lib");
        edges
    }

    #[test]
    fn the_import_scanner_sees_uses_groups_and_inline_paths() {
        let text = "use crate::error::{Error, Result};\n\
                    use crate::{layout::Layout, storage};\n\
                    // see crate::cli\n\
                    let t = crate::storage::Target::File; barman_cloud::wal::x();\n\
                    let p = crate::postgres::Lsn(0);";
        let found: Vec<_> = crate_modules(text).into_iter().collect();
        assert_eq!(found, ["error", "layout", "postgres", "storage"]);
    }

    #[test]
    fn leaves_import_nothing_else_from_the_crate() {
        let edges = edges();
        for &leaf in LAYERS[0] {
            let named = edges
                .get(leaf)
                .unwrap_or_else(|| panic!("no source for the leaf module {leaf}"));
            let others: Vec<_> = named.iter().filter(|m| *m != leaf).collect();
            assert!(
                others.is_empty(),
                "the leaf module {leaf} imports {others:?}: move what it needs into a leaf"
            );
        }
    }

    #[test]
    fn every_module_imports_only_from_layers_below_it() {
        let mut upward = Vec::new();
        for (module, named) in edges() {
            let Some(layer) = layer_of(&module) else {
                panic!("put the new module {module} into a layer of LAYERS and the crate docs");
            };
            for target in named.iter().filter(|t| **t != module) {
                match layer_of(target) {
                    Some(below) if below < layer => {}
                    _ => upward.push(format!("{module} -> {target}")),
                }
            }
        }
        assert!(
            upward.is_empty(),
            "imports that are not from a lower layer: {upward:?}"
        );
    }
}
