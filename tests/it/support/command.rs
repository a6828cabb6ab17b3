//! Running a program in a test, as ripgrep's `TestCommand` does: one call runs it and asserts
//! how it ended, and a failure names the program, its arguments and what it printed, so no
//! test has to spell out `status.success()` and `from_utf8_lossy` again.
//!
//! The diagnostics never show the environment: it carries the stores' credentials.

use std::process::{Command, ExitStatus, Output};

/// How a test runs a [`Command`].
pub trait TestCommand {
    /// Runs the program, whatever the outcome.
    fn ran(&mut self) -> Ran;

    /// Runs the program, asserts exit 0 and returns its stdout.
    #[track_caller]
    fn ok(&mut self) -> String {
        self.ran().ok()
    }

    /// Runs the program and asserts that it exits with `code`.
    #[track_caller]
    fn code(&mut self, code: i32) -> Ran {
        self.ran().code(code)
    }

    /// Runs the program and asserts that it fails (any exit code but 0, or a signal).
    #[track_caller]
    fn failed(&mut self) -> Ran {
        self.ran().failed()
    }
}

impl TestCommand for Command {
    fn ran(&mut self) -> Ran {
        let what = command_line(self);
        let out = self
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        Ran::new(what, out)
    }
}

/// The program and its arguments, without the environment.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A program that has run: its exit status and what it printed.
#[derive(Debug)]
pub struct Ran {
    what: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// What `what` (a [`command_line`]) printed and how it ended, for a program a test
    /// spawned itself.
    pub fn new(what: String, out: Output) -> Ran {
        Ran {
            what,
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit 0 and returns stdout.
    #[track_caller]
    pub fn ok(self) -> String {
        self.code(0).stdout
    }

    /// Asserts that the program exited with `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Ran {
        self.assert(self.status.code() == Some(code), &format!("exit {code}"));
        self
    }

    /// Asserts that the program failed (any exit code but 0, or a signal).
    #[track_caller]
    pub fn failed(self) -> Ran {
        self.assert(!self.status.success(), "a failure");
        self
    }

    /// Panics with everything the program printed unless `holds`.
    #[track_caller]
    pub fn assert(&self, holds: bool, expected: &str) {
        assert!(holds, "{}", self.diagnostics(expected));
    }

    fn diagnostics(&self, expected: &str) -> String {
        format!(
            "`{}` exited {:?}, expected {expected}\nstdout: {}\nstderr: {}",
            self.what,
            self.status.code(),
            self.stdout,
            self.stderr
        )
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }
}
