use super::*;

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// `(id, status, end_time, keep)` rows.
fn table(rows: &[(&str, Status, &str, Option<Keep>)]) -> Vec<Candidate> {
    rows.iter()
        .map(|(id, status, end, keep)| Candidate {
            id: (*id).into(),
            status: status.clone(),
            end_time: Some(at(end)),
            keep: *keep,
        })
        .collect()
}

fn statuses(report: &[RetentionStatus]) -> Vec<&'static str> {
    report.iter().map(|s| s.as_str()).collect()
}

fn five_backups() -> Vec<Candidate> {
    use Status::*;
    table(&[
        ("20261101T000000", Done, "2026-11-01T01:00:00Z", None),
        (
            "20261108T000000",
            Done,
            "2026-11-08T01:00:00Z",
            Some(Keep::Standalone),
        ),
        ("20261115T000000", Failed, "2026-11-15T01:00:00Z", None),
        ("20261118T000000", Done, "2026-11-18T01:00:00Z", None),
        (
            "20261122T000000",
            Done,
            "2026-11-22T01:00:00Z",
            Some(Keep::Full),
        ),
        ("20261125T000000", Done, "2026-11-25T01:00:00Z", None),
    ])
}

#[test]
fn policies_parse_as_barman_writes_them() {
    assert_eq!("REDUNDANCY 3".parse(), Ok(Policy::Redundancy(3)));
    assert_eq!(" redundancy   2 ".parse(), Ok(Policy::Redundancy(2)));
    assert_eq!(
        "RECOVERY WINDOW OF 2 WEEKS".parse(),
        Ok(Policy::RecoveryWindow {
            value: 2,
            unit: WindowUnit::Weeks
        })
    );
    assert_eq!(
        "recovery window of 1 month"
            .parse::<Policy>()
            .unwrap()
            .to_string(),
        "RECOVERY WINDOW OF 1 MONTHS"
    );
    assert_eq!(
        "REDUNDANCY 99999999999".parse(),
        Ok(Policy::Redundancy(u32::MAX))
    );
    for bad in [
        "REDUNDANCY",
        "REDUNDANCY -1",
        "REDUNDANCY +1",
        "RECOVERY WINDOW OF 3 YEARS",
        "KEEP 3",
    ] {
        assert!(bad.parse::<Policy>().is_err(), "{bad}");
    }
}

#[test]
fn redundancy_counts_kept_backups_in_its_slots() {
    let now = at("2026-11-26T00:00:00Z");
    let report = evaluate(&five_backups(), Policy::Redundancy(2), 0, now);
    assert_eq!(
        statuses(&report),
        [
            "OBSOLETE",
            "KEEP:STANDALONE",
            "-",
            "OBSOLETE",
            "KEEP:FULL",
            "VALID"
        ]
    );
    let report = evaluate(&five_backups(), Policy::Redundancy(3), 0, now);
    assert_eq!(
        statuses(&report),
        [
            "OBSOLETE",
            "KEEP:STANDALONE",
            "-",
            "VALID",
            "KEEP:FULL",
            "VALID"
        ]
    );
}

#[test]
fn minimum_redundancy_raises_a_lower_redundancy() {
    let now = at("2026-11-26T00:00:00Z");
    // Kept backups use slots too: four slots end before the oldest, five reach it.
    let report = evaluate(&five_backups(), Policy::Redundancy(1), 4, now);
    assert_eq!(statuses(&report)[0], "OBSOLETE");
    let report = evaluate(&five_backups(), Policy::Redundancy(1), 5, now);
    assert_eq!(
        statuses(&report),
        [
            "VALID",
            "KEEP:STANDALONE",
            "-",
            "VALID",
            "KEEP:FULL",
            "VALID"
        ]
    );
}

#[test]
fn recovery_window_keeps_the_first_backup_before_its_start() {
    let now = at("2026-11-26T00:00:00Z");
    let week = Policy::RecoveryWindow {
        value: 7,
        unit: WindowUnit::Days,
    };
    // The window starts on Nov 19: the Nov 18 backup is needed to reach it.
    let report = evaluate(&five_backups(), week, 0, now);
    assert_eq!(
        statuses(&report),
        [
            "OBSOLETE",
            "KEEP:STANDALONE",
            "-",
            "VALID",
            "KEEP:FULL",
            "VALID"
        ]
    );
    // Minimum redundancy 4 keeps one more as OBSOLETE*.
    let report = evaluate(&five_backups(), week, 4, now);
    assert_eq!(
        statuses(&report),
        [
            "OBSOLETE",
            "KEEP:STANDALONE",
            "-",
            "VALID",
            "KEEP:FULL",
            "VALID"
        ]
    );
    let report = evaluate(&five_backups(), week, 5, now);
    assert_eq!(
        statuses(&report),
        [
            "OBSOLETE*",
            "KEEP:STANDALONE",
            "-",
            "VALID",
            "KEEP:FULL",
            "VALID"
        ]
    );
}

#[test]
fn a_month_is_31_days() {
    use Status::*;
    let backups = table(&[
        ("20261001T000000", Done, "2026-10-01T00:00:00Z", None),
        ("20261025T000000", Done, "2026-10-25T00:00:00Z", None),
        ("20261026T000000", Done, "2026-10-26T00:00:00Z", None),
    ]);
    let month = Policy::RecoveryWindow {
        value: 1,
        unit: WindowUnit::Months,
    };
    // The window starts 31 days back, Oct 25 23:59:59: Oct 26 is inside, Oct 25 is the first
    // backup before it (needed), Oct 1 is obsolete. With 30 days Oct 25 would be obsolete.
    let report = evaluate(&backups, month, 0, at("2026-11-25T23:59:59Z"));
    assert_eq!(statuses(&report), ["OBSOLETE", "VALID", "VALID"]);
}

#[test]
fn an_enormous_window_keeps_everything() {
    let window: Policy = "RECOVERY WINDOW OF 99999999999 MONTHS".parse().unwrap();
    let report = evaluate(&five_backups(), window, 0, at("2026-11-26T00:00:00Z"));
    assert!(!report.contains(&RetentionStatus::Obsolete));
}

#[test]
fn nothing_but_done_backups_is_ever_obsolete() {
    use Status::*;
    let backups = table(&[
        ("20261101T000000", Started, "2026-11-01T00:00:00Z", None),
        ("20261102T000000", Failed, "2026-11-02T00:00:00Z", None),
    ]);
    let report = evaluate(
        &backups,
        Policy::Redundancy(0),
        0,
        at("2026-11-26T00:00:00Z"),
    );
    assert_eq!(statuses(&report), ["-", "-"]);
}
