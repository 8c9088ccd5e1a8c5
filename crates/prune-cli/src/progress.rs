//! Progress of a pass over a checkpoint: a bar with an ETA on a terminal; otherwise (logs, CI)
//! a plain line at every tenth of the way.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::Cell;
use std::io::IsTerminal;

/// Progress over `total` bytes of tensors.
pub struct Progress {
    bar: Option<ProgressBar>,
    verb: &'static str,
    total: u64,
    done: Cell<u64>,
}

impl Progress {
    /// A pass called `verb` (e.g. `selecting`) over `total` bytes.
    pub fn new(verb: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("a fixed template")
                .progress_chars("=> "),
            );
            bar.set_message(verb);
            bar
        });
        Progress {
            bar,
            verb,
            total,
            done: Cell::new(0),
        }
    }

    /// Another `bytes` bytes done.
    pub fn add(&self, bytes: usize) {
        let before = self.done.get();
        let after = before + bytes as u64;
        self.done.set(after);
        match &self.bar {
            Some(bar) => bar.set_position(after),
            None if self.total > 0 => {
                let tenth = |b: u64| b * 10 / self.total;
                if tenth(after) > tenth(before) {
                    eprintln!(
                        "{}: {}% ({} of {} MiB)",
                        self.verb,
                        tenth(after) * 10,
                        after >> 20,
                        self.total >> 20
                    );
                }
            }
            None => {}
        }
    }

    /// The pass is over.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
