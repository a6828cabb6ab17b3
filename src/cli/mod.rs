//! The command-line edge: parse, log, run, render the error once, exit with Barman's code.
//!
//! Each binary in `src/bin/` calls [`main`] with its own `Args` type and run function, so the
//! nine programs share one behaviour for usage errors (exit 3, as Barman's argparse subclass
//! does), `--version`, logging and exit codes.

// The public items here are clap derives: a field's help text is its documentation, in
// `--help` and the man pages, and a doc comment on a flattened group would be read as help.
#![allow(missing_docs)]

pub mod args;
pub mod backup;
pub mod backup_delete;
pub mod backup_keep;
pub mod backup_list;
pub mod backup_show;
pub mod check_wal_archive;
pub mod logging;
pub mod manual;
pub mod progress;
pub mod restore;
pub mod verify;
pub mod wal_archive;
pub mod wal_restore;

use std::future::Future;
use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::error::{Error, ExitClass, Result};

/// Our version and the Barman release whose behaviour we reproduce.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (barman-cloud-rs; compatible with Barman 3.19.1)"
);

/// What a command's arguments must tell the harness.
pub trait Command: Parser {
    /// `-v` and `-q` counts.
    fn verbosity(&self) -> (u8, u8);

    /// `--log-format`.
    fn log_format(&self) -> logging::LogFormat {
        logging::LogFormat::Text
    }

    /// Whether requests run on every core. One thread is enough (and starts faster) for one
    /// WAL file; commands with many transfers in flight sign and hash them in parallel.
    fn many_transfers(&self) -> bool {
        false
    }
}

/// Implements [`Command`] for an `Args` struct whose shared flags are its `common` field.
/// With a second argument, a closure telling whether these arguments mean many transfers
/// in flight (see [`Command::many_transfers`]).
macro_rules! command_with_common_args {
    ($args:ty) => {
        $crate::cli::command_with_common_args!($args, |_: &$args| false);
    };
    ($args:ty, $many_transfers:expr) => {
        impl $crate::cli::Command for $args {
            fn verbosity(&self) -> (u8, u8) {
                (self.common.verbose, self.common.quiet)
            }

            fn log_format(&self) -> $crate::cli::logging::LogFormat {
                self.common.log_format
            }

            fn many_transfers(&self) -> bool {
                ($many_transfers)(self)
            }
        }
    };
}
pub(crate) use command_with_common_args;

/// Below this size glibc's malloc serves requests from its arenas; above it, from their own
/// mappings, returned to the system when freed.
const MMAP_THRESHOLD: i32 = 256 << 10;

/// Fixes glibc's threshold for serving allocations from their own mappings (issue #19 item
/// 4). By default it adapts upwards to the largest buffer freed, up to 32 MiB: our megabyte
/// buffers (tar messages, compression blocks, download chunks) then come from the arenas,
/// one per thread that allocates, and are kept there, fragmented, once freed; a backup's
/// resident memory was twice its live heap (gzip: 15 MB of heap, 37 MB resident). With the
/// threshold fixed, a freed megabyte goes back to the system at once (gzip: 22 MB resident).
/// Limiting the arenas instead (`M_ARENA_MAX` 1 or 2) left gzip at 38-41 MB; an allocator
/// crate would be a C build and a dependency for what one parameter does.
///
/// Only `barman-cloud-backup` calls it, first thing in `main` (before any other thread
/// exists): in a restore, whose heap is small anyway, the page faults of buffers mapped
/// fresh made an uncompressed restore from S3 a quarter slower.
#[cfg_attr(
    all(target_os = "linux", target_env = "gnu"),
    expect(
        unsafe_code,
        reason = "the one call into libc, which has no safe wrapper"
    )
)]
pub fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter, and this runs before any other thread
    // exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Runs one command: the whole life of a process.
pub fn main<A, F, Fut>(run: F) -> ExitCode
where
    A: Command,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let program = std::env::args().next().and_then(|p| {
        std::path::Path::new(&p)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    let args = match A::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(ExitClass::Input as u8),
            };
        }
    };
    let (verbose, quiet) = args.verbosity();
    crate::redact::register_from_env();
    logging::init(verbose, quiet, args.log_format());
    // Blocking work (compression, files) goes to tokio's blocking pool either way.
    let runtime = if args.many_transfers() {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::from(ExitClass::General as u8);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let name = program.unwrap_or_else(|| "barman-cloud".into());
            // The logger masks credentials in every line, this one included.
            tracing::error!("{name}: {e}");
            ExitCode::from(e.class() as u8)
        }
    }
}

/// Writes `text` to stdout. A closed pipe (`backup-list | head`) is not an error.
///
/// # Errors
/// Any other write error.
pub fn emit(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => Err(Error::Io {
            action: "write",
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}
