//! A progress bar on stderr when it is a terminal; silence otherwise (log lines only), so
//! `archive_command` and cron output stay clean.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Progress, ProgressHandle};

struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&self, total: Option<u64>) {
        if let Some(total) = total {
            self.0.set_length(total);
        }
        self.0.reset_elapsed();
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A bar labelled `what` when stderr is a terminal and the user did not ask for quiet.
pub fn for_terminal(what: &str, quiet: u8) -> ProgressHandle {
    if quiet > 0 || !std::io::stderr().is_terminal() {
        return ProgressHandle::silent();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    ProgressHandle(Arc::new(Bar(bar)))
}
