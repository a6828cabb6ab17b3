//! Runs one `barman-cloud-*` command found on `PATH`, with the sidecar's environment plus the
//! store's credentials, streaming each line it writes into the sidecar's log as the plugin
//! does. The exit code is the caller's to read: each flow maps it its own way.
//!
//! A command that crashes only fails the call that ran it. When the call is cancelled (the
//! client went away), the command is killed rather than left running unobserved.

use std::io;
use std::process::Stdio;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::log::{Level, Logger};

/// One command line and the variables added to the sidecar's environment for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program, by bare name (`barman-cloud-wal-archive`), looked up on `PATH`.
    pub program: &'static str,
    /// Its arguments.
    pub args: Vec<String>,
    /// Added to (or replacing in) the sidecar's environment. Values may be credentials:
    /// they are never logged.
    pub env: Vec<(String, String)>,
}

/// What to do with the command's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Stream it into the log, line by line.
    Log,
    /// Keep it for the caller (the JSON of backup-show and backup-list).
    Keep,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output when [`Stdout::Keep`] was asked for, else empty.
    pub stdout: Vec<u8>,
    /// The last line it wrote to standard error, for the call's error message.
    pub last_error_line: Option<String>,
}

impl Finished {
    /// True when it exited 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// How a command that failed ended: its exit code (`None`: killed by a signal) and the
/// last line it wrote to stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The exit code.
    pub code: Option<i32>,
    /// Its last stderr line.
    pub last_error_line: Option<String>,
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "exited {code}")?,
            None => write!(f, "was killed by a signal")?,
        }
        if let Some(line) = &self.last_error_line {
            write!(f, ": {line}")?;
        }
        Ok(())
    }
}

impl Ended {
    /// barman-cloud-wal-restore's exit code → gRPC code, as the plugin maps it: 1 the WAL (or
    /// the bucket) is not there, 3 an invalid WAL name, 2 connectivity and 4 generic (both
    /// retryable in practice), anything else (a signal included) internal.
    pub fn wal_restore_code(&self) -> tonic::Code {
        match self.code {
            Some(1) => tonic::Code::NotFound,
            Some(3) => tonic::Code::InvalidArgument,
            Some(2 | 4) => tonic::Code::Unavailable,
            _ => tonic::Code::Internal,
        }
    }
}

impl From<&Finished> for Ended {
    fn from(finished: &Finished) -> Self {
        Self {
            code: finished.code,
            last_error_line: finished.last_error_line.clone(),
        }
    }
}

/// Why a command could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Not on `PATH`, not executable, or the fork failed.
    #[error(
        "start {program}: {source}; check the barman-cloud-* binaries are on the sidecar's PATH"
    )]
    Spawn {
        /// The program.
        program: &'static str,
        /// What the OS said.
        source: io::Error,
    },
    /// Its output or its exit could not be read.
    #[error("wait for {program}: {source}")]
    Wait {
        /// The program.
        program: &'static str,
        /// What the OS said.
        source: io::Error,
    },
}

impl Invocation {
    /// Runs the command, logging its argument vector at debug level and each output line at
    /// info (stderr lines included: Barman writes its progress there).
    ///
    /// # Errors
    /// [`Error`] when the command cannot be started or waited for; a non-zero exit is not
    /// an error here.
    pub async fn run(&self, log: &Logger, stdout: Stdout) -> Result<Finished, Error> {
        let program = self.program;
        let log = log.named(program);
        log.debug(
            "Executing barman-cloud command",
            &[("args", json!(self.args))],
        );
        let mut child = Command::new(program)
            .args(&self.args)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Error::Spawn { program, source })?;
        let out = child.stdout.take().expect("stdout is piped");
        let err = child.stderr.take().expect("stderr is piped");
        let wait_error = |source| Error::Wait { program, source };
        let (kept, last_error_line, status) = tokio::try_join!(
            async {
                match stdout {
                    Stdout::Log => stream_lines(out, &log, "stdout").await.map(|_| Vec::new()),
                    Stdout::Keep => {
                        let mut bytes = Vec::new();
                        tokio::io::AsyncReadExt::read_to_end(&mut { out }, &mut bytes)
                            .await
                            .map(|_| bytes)
                    }
                }
            },
            stream_lines(err, &log, "stderr"),
            child.wait(),
        )
        .map_err(wait_error)?;
        let code = status.code();
        log.debug("barman-cloud command ended", &[("exitCode", json!(code))]);
        Ok(Finished {
            code,
            stdout: kept,
            last_error_line,
        })
    }
}

/// Logs each line of `pipe` at info level; returns the last non-empty line.
async fn stream_lines(
    pipe: impl AsyncRead + Unpin,
    log: &Logger,
    name: &str,
) -> io::Result<Option<String>> {
    // Split on bytes: a line that is not UTF-8 is logged lossily, never a reason to fail.
    let mut lines = BufReader::new(pipe).split(b'\n');
    let mut last = None;
    while let Some(line) = lines.next_segment().await? {
        let line = String::from_utf8_lossy(&line).trim_end().to_owned();
        if line.is_empty() {
            continue;
        }
        log.log(Level::Info, &line, &[("pipe", json!(name))]);
        last = Some(line);
    }
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn exit_codes_of_wal_restore() {
        let code = |code| {
            Ended {
                code,
                last_error_line: None,
            }
            .wal_restore_code()
        };
        assert_eq!(code(Some(1)), Code::NotFound);
        assert_eq!(code(Some(2)), Code::Unavailable);
        assert_eq!(code(Some(3)), Code::InvalidArgument);
        assert_eq!(code(Some(4)), Code::Unavailable);
        assert_eq!(code(Some(5)), Code::Internal);
        assert_eq!(code(Some(0)), Code::Internal);
        assert_eq!(code(None), Code::Internal);
    }
}
