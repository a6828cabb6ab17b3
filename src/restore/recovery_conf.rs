//! Recovery settings: our addition to Barman, which leaves them to the caller.
//!
//! On request the restore ends by writing `recovery.signal` and appending `restore_command`
//! and the `recovery_target*` settings to `postgresql.auto.conf` (read last by PostgreSQL, so
//! these win over what the backup carried). The command names our `barman-cloud-wal-restore`
//! with the provider flags, never credentials: PostgreSQL's environment has to provide them,
//! exactly as for `archive_command`.

use std::fs::{self, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::durable;
use crate::error::{Error, Result};
use crate::postgres::Lsn;

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// `recovery_target_time`, passed to PostgreSQL as written.
    Time(String),
    /// `recovery_target_xid`.
    Xid(String),
    /// `recovery_target_lsn`.
    Lsn(Lsn),
    /// `recovery_target_name`: a restore point.
    Name(String),
    /// `recovery_target = 'immediate'`: as soon as the backup is consistent.
    Immediate,
}

/// `recovery_target_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[allow(
    missing_docs,
    reason = "PostgreSQL's words; a variant's doc would become its help in --help"
)]
pub enum TargetAction {
    Pause,
    Promote,
    Shutdown,
}

/// The settings written after a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryConf {
    /// The whole `restore_command`, see [`restore_command`].
    pub restore_command: String,
    /// Where recovery stops (`recovery_target_*`).
    pub target: Option<RecoveryTarget>,
    /// `recovery_target_action`.
    pub target_action: Option<TargetAction>,
    /// `recovery_target_timeline`: `latest`, `current` or a number.
    pub target_timeline: Option<String>,
    /// Writes `archive_mode = 'off'`, so that the restored server does not archive into the
    /// source's place with the `archive_command` it kept.
    pub disable_archiving: bool,
}

/// A `restore_command` running `program` with `args` then `%f %p`. Each word is quoted for
/// the shell PostgreSQL runs it with, and any `%` in it doubled so that PostgreSQL does not
/// take it for a placeholder (a URL-encoded prefix has them).
pub fn restore_command(program: &Path, args: &[String]) -> String {
    let mut words = vec![shell_quote(&program.to_string_lossy().replace('%', "%%"))];
    words.extend(args.iter().map(|a| shell_quote(&a.replace('%', "%%"))));
    words.push("%f %p".into());
    words.join(" ")
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"%+,-./:=@_".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

impl RecoveryConf {
    /// The lines appended to `postgresql.auto.conf`.
    ///
    /// # Errors
    /// [`Error::Input`] for a value PostgreSQL's configuration syntax cannot carry.
    pub fn lines(&self) -> Result<String> {
        let mut settings = vec![("restore_command", self.restore_command.clone())];
        match &self.target {
            Some(RecoveryTarget::Time(t)) => settings.push(("recovery_target_time", t.clone())),
            Some(RecoveryTarget::Xid(x)) => settings.push(("recovery_target_xid", x.clone())),
            Some(RecoveryTarget::Lsn(l)) => settings.push(("recovery_target_lsn", l.to_string())),
            Some(RecoveryTarget::Name(n)) => settings.push(("recovery_target_name", n.clone())),
            Some(RecoveryTarget::Immediate) => {
                settings.push(("recovery_target", "immediate".into()))
            }
            None => {}
        }
        if let Some(action) = self.target_action {
            let action = match action {
                TargetAction::Pause => "pause",
                TargetAction::Promote => "promote",
                TargetAction::Shutdown => "shutdown",
            };
            settings.push(("recovery_target_action", action.into()));
        }
        if let Some(timeline) = &self.target_timeline {
            let valid = matches!(timeline.as_str(), "latest" | "current")
                || timeline.parse::<u32>().is_ok_and(|t| t > 0);
            if !valid {
                return Err(Error::Input(format!(
                    "invalid recovery target timeline '{timeline}': use latest, current or a \
                     timeline number"
                )));
            }
            settings.push(("recovery_target_timeline", timeline.clone()));
        }
        if self.disable_archiving {
            settings.push(("archive_mode", "off".into()));
        }
        let mut out = String::from("# Recovery settings written by barman-cloud-restore\n");
        for (name, value) in settings {
            if value.contains(['\n', '\r', '\0']) {
                return Err(Error::Input(format!(
                    "the value of {name} cannot contain a line break"
                )));
            }
            out.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        Ok(out)
    }

    /// Writes `recovery.signal` and appends the settings to `postgresql.auto.conf` in
    /// `pgdata`, each file replaced atomically, mode 0600, owned by `owner` when given.
    ///
    /// # Errors
    /// [`Error::Input`] for unusable values, I/O errors.
    pub(crate) fn write(&self, pgdata: &Path, owner: Option<(u32, u32)>) -> Result<()> {
        let lines = self.lines()?;
        let auto_conf = pgdata.join("postgresql.auto.conf");
        let mut text = match fs::read_to_string(&auto_conf) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::io("read", &auto_conf)(e)),
        };
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&lines);
        write_owned(&auto_conf, text.as_bytes(), owner)?;
        write_owned(&pgdata.join("recovery.signal"), b"", owner)
    }
}

fn write_owned(path: &Path, content: &[u8], owner: Option<(u32, u32)>) -> Result<()> {
    durable::write_atomically(path, |file| {
        file.set_permissions(Permissions::from_mode(0o600))?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&*file, Some(uid), Some(gid))?;
        }
        file.write_all(content)
    })
    .map_err(Error::io("write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_command_quotes_for_shell_and_postgres() {
        let cmd = restore_command(
            Path::new("/opt/bcrs/bin/barman-cloud-wal-restore"),
            &[
                "--endpoint-url".into(),
                "http://127.0.0.1:9000".into(),
                "s3://bucket/a b%20c".into(),
                "it's".into(),
            ],
        );
        assert_eq!(
            cmd,
            "/opt/bcrs/bin/barman-cloud-wal-restore --endpoint-url http://127.0.0.1:9000 \
             's3://bucket/a b%%20c' 'it'\\''s' %f %p"
        );
        let conf = RecoveryConf {
            restore_command: cmd,
            target: Some(RecoveryTarget::Time("2026-11-25 10:00:00+00".into())),
            target_action: Some(TargetAction::Promote),
            target_timeline: Some("latest".into()),
            disable_archiving: true,
        };
        let lines = conf.lines().unwrap();
        assert!(
            lines.contains(r"''s3://bucket/a b%%20c'' ''it''\''''s'' %f %p'"),
            "{lines}"
        );
        assert!(lines.contains("recovery_target_time = '2026-11-25 10:00:00+00'\n"));
        assert!(lines.contains("recovery_target_action = 'promote'\n"));
        assert!(lines.contains("recovery_target_timeline = 'latest'\n"));
        assert!(lines.ends_with("archive_mode = 'off'\n"), "{lines}");
    }

    #[test]
    fn writes_signal_and_appends_settings() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("postgresql.auto.conf"), "work_mem = '4MB'").unwrap();
        let conf = RecoveryConf {
            restore_command: "x %f %p".into(),
            target: Some(RecoveryTarget::Immediate),
            target_action: None,
            target_timeline: None,
            disable_archiving: false,
        };
        conf.write(dir.path(), None).unwrap();
        let text = fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap();
        assert!(text.starts_with("work_mem = '4MB'\n# Recovery settings"));
        assert!(text.ends_with("restore_command = 'x %f %p'\nrecovery_target = 'immediate'\n"));
        let signal = fs::metadata(dir.path().join("recovery.signal")).unwrap();
        assert_eq!(
            (signal.len(), signal.permissions().mode() & 0o777),
            (0, 0o600)
        );
        let bad = RecoveryConf {
            target_timeline: Some("soon".into()),
            ..conf
        };
        assert!(bad.lines().is_err());
    }
}
