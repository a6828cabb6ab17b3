//! Continuity of the WAL archive, as a pure function of its listing and its history files.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::postgres::{Lsn, WalKind, WalName};

/// A run of consecutive segments missing from one timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// The timeline.
    pub timeline: u32,
    /// The first segment missing.
    pub first: String,
    /// The last segment missing.
    pub last: String,
    /// How many segments are missing.
    pub count: u64,
}

/// What one timeline of the archive holds from where it is needed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeline {
    /// The timeline.
    pub timeline: u32,
    /// The first segment that must be there: the oldest backup's begin WAL on its
    /// timeline, the switch point from the history file on a later one.
    pub first: String,
    /// The newest archived segment on it.
    pub last: String,
    /// Segments archived from `first` to `last`.
    pub segments: u64,
    /// The timeline it branched from and where, as its history file says.
    pub parent: Option<(u32, String)>,
}

/// The continuity of the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Continuity {
    /// Each timeline checked, in order.
    pub timelines: Vec<Timeline>,
    /// The gaps found.
    pub gaps: Vec<Gap>,
    /// Timelines with segments but no history file.
    pub missing_history: Vec<u32>,
}

/// Checks that every segment is archived on each timeline from `start` (the oldest backup's
/// begin WAL) to the newest segment of that timeline. `names` are the archive's WAL names;
/// `histories` each history file's timeline with its last line's parent and switch point;
/// a segment's `.partial` stands in for it (a timeline's last segment before a promotion).
pub fn continuity(
    names: &BTreeSet<WalName>,
    histories: &BTreeMap<u32, (u32, Lsn)>,
    start: &WalName,
    segment_size: u64,
) -> Continuity {
    let per_log = u32::try_from(0x1_0000_0000u64 / segment_size.max(1)).unwrap_or(u32::MAX);
    let mut present: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for name in names {
        if matches!(name.kind(), WalKind::Segment | WalKind::Partial) {
            if let Some(segment) = name.segment_name() {
                present
                    .entry(name.timeline())
                    .or_default()
                    .insert(segment.to_ascii_uppercase());
            }
        }
    }
    let first_timeline = start.timeline();
    let mut timelines: BTreeSet<u32> = present
        .keys()
        .copied()
        .filter(|t| *t >= first_timeline)
        .collect();
    timelines.insert(first_timeline);
    let mut out = Continuity::default();
    for timeline in timelines {
        let on_timeline = present.get(&timeline).cloned().unwrap_or_default();
        let history = histories.get(&timeline);
        if timeline > 1 && history.is_none() {
            out.missing_history.push(timeline);
        }
        let first = if timeline == first_timeline {
            start.as_str().to_ascii_uppercase()
        } else {
            match history {
                Some((_, switch)) => switch.segment(timeline, segment_size).to_string(),
                None => match on_timeline.first() {
                    Some(first) => first.clone(),
                    None => continue,
                },
            }
        };
        let last = match on_timeline.last() {
            Some(last) if *last >= first => last.clone(),
            // Nothing archived from where it is needed: that one segment is missing.
            _ => first.clone(),
        };
        let mut segments = 0;
        let mut gap: Option<Gap> = None;
        let mut at = WalName::parse(&first).ok();
        while let Some(name) = at.filter(|n| n.as_str() <= last.as_str()) {
            if on_timeline.contains(name.as_str()) {
                segments += 1;
                out.gaps.extend(gap.take());
            } else {
                let gap = gap.get_or_insert_with(|| Gap {
                    timeline,
                    first: name.to_string(),
                    last: name.to_string(),
                    count: 0,
                });
                gap.last = name.to_string();
                gap.count += 1;
            }
            at = name.next_segment(per_log);
        }
        out.gaps.extend(gap);
        out.timelines.push(Timeline {
            timeline,
            first,
            last,
            segments,
            parent: history.map(|(parent, switch)| (*parent, switch.to_string())),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> BTreeSet<WalName> {
        list.iter().map(|n| WalName::parse(n).unwrap()).collect()
    }

    const MB16: u64 = 16 << 20;

    #[test]
    fn a_missing_segment_in_the_middle_is_a_one_segment_gap() {
        let archive = names(&[
            "000000010000000000000003",
            "000000010000000000000004",
            "000000010000000000000006",
            "000000010000000000000007",
        ]);
        let start = WalName::parse("000000010000000000000003").unwrap();
        let c = continuity(&archive, &BTreeMap::new(), &start, MB16);
        assert_eq!(
            c.gaps,
            [Gap {
                timeline: 1,
                first: "000000010000000000000005".into(),
                last: "000000010000000000000005".into(),
                count: 1
            }]
        );
        assert_eq!(c.timelines[0].segments, 4);
        assert!(c.missing_history.is_empty());
    }

    #[test]
    fn a_later_timeline_starts_at_its_switch_point_and_needs_its_history() {
        let archive = names(&[
            "000000010000000000000003",
            "000000010000000000000004.partial",
            "000000020000000000000004",
            "000000020000000000000005",
            "000000030000000000000006",
        ]);
        let start = WalName::parse("000000010000000000000003").unwrap();
        let histories = BTreeMap::from([(2, (1, "0/4000100".parse().unwrap()))]);
        let c = continuity(&archive, &histories, &start, MB16);
        assert!(c.gaps.is_empty(), "{:?}", c.gaps);
        assert_eq!(c.missing_history, [3]);
        assert_eq!(c.timelines[1].first, "000000020000000000000004");
        assert_eq!(c.timelines[1].parent, Some((1, "0/4000100".into())));
    }

    #[test]
    fn nothing_archived_from_the_start_is_one_missing_segment() {
        let archive = names(&["000000010000000000000001"]);
        let start = WalName::parse("000000010000000000000003").unwrap();
        let c = continuity(&archive, &BTreeMap::new(), &start, MB16);
        assert_eq!(c.gaps.len(), 1);
        assert_eq!(c.gaps[0].first, "000000010000000000000003");
    }
}
