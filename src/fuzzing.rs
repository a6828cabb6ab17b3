//! Entry points shared by the fuzz targets (`fuzz/`) and the test that replays their corpus
//! (`tests/it/corpus.rs`): each takes arbitrary bytes and must never panic, hang, or (for tar
//! extraction) write outside its target directory.

use std::path::Path;

use crate::catalog::BackupInfo;
use crate::postgres::WalName;

/// `backup.info` parsing: anything parsed is written back and reads back the same.
pub fn backup_info(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(info) = BackupInfo::parse(text) {
        let written = info.to_string();
        let again = BackupInfo::parse(&written).expect("what we write must parse");
        assert_eq!(again.to_string(), written, "written form is not stable");
    }
}

/// WAL names: a parsed name prints as given and its parts are consistent.
pub fn wal_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = WalName::parse(text) {
        assert_eq!(name.as_str(), text);
        let _ = (
            name.kind(),
            name.timeline(),
            name.hash_dir(),
            name.segment_name(),
        );
    }
}

/// Tar extraction into `target` (an empty directory): errors are fine, escaping is not. The
/// caller checks that nothing appeared outside `target`.
pub fn tar_extract(data: &[u8], target: &Path) {
    if let Ok(extractor) = crate::restore::fuzz_extractor(target) {
        let _ = extractor.extract(data);
    }
}
