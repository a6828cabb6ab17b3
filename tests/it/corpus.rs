//! Replays the fuzz corpus (`fuzz/corpus/`) through the same entry points as the fuzz
//! targets, so every input ever found stays handled in the normal test suite.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus for {target}");
    files
}

#[test]
fn backup_info_corpus() {
    for (_, data) in inputs("backup_info") {
        barman_cloud::fuzzing::backup_info(&data);
    }
}

#[test]
fn wal_name_corpus() {
    for (_, data) in inputs("wal_name") {
        barman_cloud::fuzzing::wal_name(&data);
    }
}

#[test]
fn tar_extract_corpus() {
    for (name, data) in inputs("tar_extract") {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::create_dir(&target).unwrap();
        barman_cloud::fuzzing::tar_extract(&data, &target);
        let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(beside.len(), 1, "{name} wrote outside its target");
    }
}

/// A blind mutation run on stable Rust (cargo-fuzz needs nightly): thousands of corpus
/// variants with bytes flipped, dropped and repeated, through every entry point.
#[test]
fn mutated_corpus_never_panics() {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n.max(1) as u64) as usize
    };
    for target in ["backup_info", "wal_name", "tar_extract"] {
        let seeds = inputs(target);
        let dir = tempfile::tempdir().unwrap();
        for round in 0..if target == "tar_extract" { 300 } else { 3000 } {
            let mut data = seeds[round % seeds.len()].1.clone();
            for _ in 0..=next(4) {
                if data.is_empty() {
                    data.push(next(256) as u8);
                    continue;
                }
                let i = next(data.len());
                match next(3) {
                    0 => data[i] = next(256) as u8,
                    1 => {
                        data.remove(i);
                    }
                    _ => {
                        let end = (i + next(64)).min(data.len());
                        let copy = data[i..end].to_vec();
                        data.splice(i..i, copy);
                    }
                }
            }
            match target {
                "backup_info" => barman_cloud::fuzzing::backup_info(&data),
                "wal_name" => barman_cloud::fuzzing::wal_name(&data),
                _ => {
                    let target = dir.path().join(format!("t{round}"));
                    std::fs::create_dir(&target).unwrap();
                    barman_cloud::fuzzing::tar_extract(&data, &target);
                }
            }
        }
        if target == "tar_extract" {
            let beside = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(beside, 300, "a mutated archive wrote outside its target");
        }
    }
}
