use super::*;

fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/backup_info")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn barman_file_round_trips_byte_for_byte() {
    let text = fixture("done-tablespace-named.info");
    let info = BackupInfo::parse(&text).unwrap();
    assert_eq!(info.to_string(), text);
}

#[test]
fn barman_file_fields_are_typed() {
    let info = BackupInfo::parse(&fixture("done-tablespace-named.info")).unwrap();
    assert_eq!(info.status, Status::Done);
    assert_eq!(info.backup_name.as_deref(), Some("first-backup"));
    assert_eq!(info.begin_offset, Some(40));
    assert_eq!(info.timeline, Some(1));
    assert_eq!(info.version, Some(150018));
    assert_eq!(info.cluster_size, Some(26832585));
    assert_eq!(
        info.tablespaces,
        Some(vec![Tablespace {
            name: "tbs1".into(),
            oid: 16384,
            location: "/tmp/pgt/tbs1".into()
        }])
    );
    let label = info.backup_label.unwrap();
    assert!(label.starts_with("START WAL LOCATION: 0/4000028"));
    assert!(label.ends_with("START TIMELINE: 1\n"));
    let begin = info.begin_time.unwrap();
    assert_eq!(begin.0.offset().local_minus_utc(), 3600);
    assert_eq!(begin.to_string(), "2026-11-25 04:50:49.165843+01:00");
    let stats = info.copy_stats.unwrap();
    assert_eq!(stats.get("number_of_workers"), Some(&PyValue::Int(2)));
    assert_eq!(
        stats.get("total_time").and_then(PyValue::as_f64),
        Some(2.086515)
    );
    assert_eq!(info.compression, None);
    assert_eq!(info.server_name.as_deref(), Some("cloud"));
}

#[test]
fn started_file_omits_the_name_and_keeps_every_other_key() {
    let info = BackupInfo {
        status: Status::Started,
        server_name: Some("cloud".into()),
        ..Default::default()
    };
    let text = info.to_string();
    assert_eq!(text.lines().count(), 33);
    assert!(!text.contains("backup_name="));
    assert!(!text.contains("snapshots_info="));
    assert!(text.contains("\nstatus=STARTED\n"));
    assert!(text.starts_with("backup_label=None\n"));
    assert!(text.ends_with("xlog_segment_size=16777216\n"));
    let keys: Vec<_> = text.lines().map(|l| l.split('=').next().unwrap()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "keys in ASCII order");
    assert_eq!(BackupInfo::parse(&text).unwrap(), info);
}

#[test]
fn reading_is_as_lenient_as_barman() {
    let info = BackupInfo::parse("# comment\n\n  status = FAILED \nerror=failure x = y\n").unwrap();
    assert_eq!(info.status, Status::Failed);
    assert_eq!(info.error.as_deref(), Some("failure x = y"));
    let naive = BackupInfo::parse("begin_time=2026-11-25 04:50:49\n").unwrap();
    assert!(naive.begin_time.is_some());
}

#[test]
fn empty_lists_are_written_as_none() {
    let info = BackupInfo {
        included_files: Some(vec![]),
        tablespaces: Some(vec![]),
        ..Default::default()
    };
    let text = info.to_string();
    assert!(text.contains("\nincluded_files=None\n"));
    assert!(text.contains("\ntablespaces=None\n"));
}

#[test]
fn bad_files_name_the_line_and_the_problem() {
    for (text, line, needle) in [
        ("status=DONE\nfoo=1\n", 2, "foo: unsupported field"),
        ("timeline=one\n", 1, "timeline: 'one' is not a whole number"),
        ("no equals sign\n", 1, "is not key=value"),
        (
            "backup_label='unterminated\n",
            1,
            "backup_label: not a Python literal",
        ),
        (
            "tablespaces=[('a', 'b', 'c')]\n",
            1,
            "tablespaces: expected a list",
        ),
        (
            "begin_time=yesterday\n",
            1,
            "begin_time: 'yesterday' is not a time",
        ),
    ] {
        let e = BackupInfo::parse(text).unwrap_err();
        assert_eq!(e.line, line, "{text:?}");
        assert!(e.to_string().contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn a_whole_file_ends_with_its_last_key_and_a_newline() {
    let whole = fixture("done-tablespace-named.info");
    assert_eq!(BackupInfo::incomplete(&whole), None);
    assert_eq!(
        BackupInfo::incomplete(&BackupInfo::default().to_string()),
        None
    );
    assert_eq!(BackupInfo::incomplete(""), Some("empty"));
    assert_eq!(BackupInfo::incomplete("\n# nothing\n"), Some("empty"));
    let cut_line = &whole[..whole.len() - 1];
    assert_eq!(
        BackupInfo::incomplete(cut_line),
        Some("cut inside its last line")
    );
    let before_last = &whole[..whole.find("xlog_segment_size=").unwrap()];
    assert_eq!(
        BackupInfo::incomplete(before_last),
        Some("cut before its last key, xlog_segment_size")
    );
    // Every prefix that ends at a line break but loses a key is caught.
    for (i, _) in whole.match_indices('\n') {
        let prefix = &whole[..=i];
        assert_eq!(
            BackupInfo::incomplete(prefix).is_none(),
            prefix.len() == whole.len()
        );
    }
}

#[test]
fn an_unknown_key_is_told_apart_from_a_bad_value() {
    let bom = BackupInfo::parse("\u{feff}backup_label=None\nstatus=DONE\n").unwrap_err();
    assert_eq!(bom.unknown_key.as_deref(), Some("\u{feff}backup_label"));
    assert_eq!(bom.line, 1);
    let bad = BackupInfo::parse("timeline=one\n").unwrap_err();
    assert_eq!(bad.unknown_key, None);
}
