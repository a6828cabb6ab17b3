//! Retention policies (`-r`) and which backups they make obsolete: a pure function of the
//! catalog, the policy and `now`, so it is tested on fixed tables of dated backups. Which WAL
//! a deletion frees is another pure function ([`wal_cleanup`]); [`delete`] runs both against
//! a store.

pub mod delete;
mod wal;

pub use delete::{Action, DeleteOptions, Deleter};
pub use wal::{WalBackup, WalCleanup, WalRange, protected_ranges, remove_until, wal_cleanup};

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, FixedOffset};

pub use crate::catalog::Keep;
use crate::catalog::Status;
use crate::layout::BackupId;

/// A retention policy as Barman writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `REDUNDANCY n`: keep the n newest DONE backups.
    Redundancy(u32),
    /// `RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS`: keep what a recovery to any time in the last
    /// `value` `unit`s needs (a month is 31 days).
    RecoveryWindow {
        /// How many units.
        value: u32,
        /// Days, weeks or months.
        unit: WindowUnit,
    },
}

/// The unit of a recovery window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    /// `DAYS`.
    Days,
    /// `WEEKS`, 7 days.
    Weeks,
    /// `MONTHS`, 31 days.
    Months,
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        let words: Vec<String> = s.split_whitespace().map(str::to_ascii_lowercase).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        // Barman's `\d+`: digits only, and no upper limit (a huge count keeps everything).
        let number = |w: &str| {
            (!w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
                .then(|| w.parse::<u32>().unwrap_or(u32::MAX))
        };
        let policy = match words.as_slice() {
            ["redundancy", n] => number(n).map(Policy::Redundancy),
            ["recovery", "window", "of", n, unit] => {
                let unit = match unit.strip_suffix('s').unwrap_or(unit) {
                    "day" => Some(WindowUnit::Days),
                    "week" => Some(WindowUnit::Weeks),
                    "month" => Some(WindowUnit::Months),
                    _ => None,
                };
                number(n)
                    .zip(unit)
                    .map(|(value, unit)| Policy::RecoveryWindow { value, unit })
            }
            _ => None,
        };
        policy.ok_or_else(|| {
            format!(
                "Could not create retention policy '{s}': use REDUNDANCY n or RECOVERY WINDOW \
                 OF n DAYS|WEEKS|MONTHS"
            )
        })
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Redundancy(n) => write!(f, "REDUNDANCY {n}"),
            Policy::RecoveryWindow { value, unit } => {
                let unit = match unit {
                    WindowUnit::Days => "DAYS",
                    WindowUnit::Weeks => "WEEKS",
                    WindowUnit::Months => "MONTHS",
                };
                write!(f, "RECOVERY WINDOW OF {value} {unit}")
            }
        }
    }
}

impl Policy {
    /// The window a recovery-window policy keeps; `None` for redundancy.
    pub fn window(self) -> Option<Duration> {
        match self {
            Policy::Redundancy(_) => None,
            Policy::RecoveryWindow { value, unit } => {
                let days = i64::from(value)
                    * match unit {
                        WindowUnit::Days => 1,
                        WindowUnit::Weeks => 7,
                        WindowUnit::Months => 31,
                    };
                // A window beyond any backup's age keeps everything; capping it at 100,000
                // years keeps the arithmetic on dates in range.
                Some(Duration::days(days.min(36_500_000)))
            }
        }
    }
}

/// A backup's standing under a policy, as `backup-list` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionStatus {
    /// Needed by the policy.
    Valid,
    /// Not needed by the policy: deletion removes it.
    Obsolete,
    /// Outside the window but kept for `--minimum-redundancy` (`OBSOLETE*`).
    PotentiallyObsolete,
    /// Kept with `keep:full`.
    KeepFull,
    /// Kept with `keep:standalone`.
    KeepStandalone,
    /// Not DONE: never touched by retention (`-`).
    None,
}

impl RetentionStatus {
    /// The word `backup-list` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionStatus::Valid => "VALID",
            RetentionStatus::Obsolete => "OBSOLETE",
            RetentionStatus::PotentiallyObsolete => "OBSOLETE*",
            RetentionStatus::KeepFull => "KEEP:FULL",
            RetentionStatus::KeepStandalone => "KEEP:STANDALONE",
            RetentionStatus::None => "-",
        }
    }
}

/// What retention needs to know of one backup.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The backup ID.
    pub id: BackupId,
    /// Its status.
    pub status: Status,
    /// When it ended.
    pub end_time: Option<DateTime<FixedOffset>>,
    /// Its keep annotation.
    pub keep: Option<Keep>,
}

/// The standing of every backup (same order as `backups`, which need not be sorted).
/// `now` is the local time the window ends at.
pub fn evaluate(
    backups: &[Candidate],
    policy: Policy,
    minimum_redundancy: u32,
    now: DateTime<FixedOffset>,
) -> Vec<RetentionStatus> {
    let mut order: Vec<usize> = (0..backups.len()).collect();
    // Newest first, by ID (IDs sort chronologically).
    order.sort_by(|&a, &b| backups[b].id.cmp(&backups[a].id));
    let mut report = vec![RetentionStatus::None; backups.len()];
    let keep_status = |keep: Option<Keep>| match keep {
        Some(Keep::Standalone) => Some(RetentionStatus::KeepStandalone),
        Some(Keep::Full) => Some(RetentionStatus::KeepFull),
        None => None,
    };
    match policy.window() {
        None => {
            let Policy::Redundancy(n) = policy else {
                unreachable!("a policy without a window is a redundancy")
            };
            if n < minimum_redundancy {
                tracing::warn!(
                    "Retention policy redundancy ({n}) is lower than the required minimum \
                     redundancy ({minimum_redundancy}). Enforce {minimum_redundancy}."
                );
            }
            let redundancy = n.max(minimum_redundancy) as usize;
            let mut done = 0;
            for i in order {
                let b = &backups[i];
                if b.status != Status::Done {
                    continue;
                }
                report[i] = keep_status(b.keep).unwrap_or(if done < redundancy {
                    RetentionStatus::Valid
                } else {
                    RetentionStatus::Obsolete
                });
                done += 1;
            }
        }
        Some(window) => {
            let point = now - window;
            let mut found = false;
            let mut valid = 0;
            for i in order {
                let b = &backups[i];
                if b.status != Status::Done {
                    continue;
                }
                let keep = keep_status(b.keep);
                if found {
                    if valid < minimum_redundancy {
                        report[i] = keep.unwrap_or(RetentionStatus::PotentiallyObsolete);
                        valid += 1;
                    } else {
                        report[i] = keep.unwrap_or(RetentionStatus::Obsolete);
                    }
                } else {
                    report[i] = keep.unwrap_or(RetentionStatus::Valid);
                    valid += 1;
                    // A DONE backup without an end time counts as inside the window.
                    if b.end_time.is_some_and(|end| end < point) {
                        found = true;
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests;
