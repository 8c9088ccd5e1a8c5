//! The `prune` command.
//!
//! ```text
//! prune check CONFIG.yaml [--epochs N] [--json]
//! prune inspect FILE.safetensors [--pattern P]... [--json]
//! prune apply CONFIG.yaml IN.safetensors -o OUT.safetensors [--epoch E] [--force] [--json]
//! prune diff A.safetensors B.safetensors [--require-pruning] [--json]
//! ```
//! `check` validates a pruning configuration and prints the resolved plan; `inspect` reports
//! every tensor's zeros and patterns; `apply` prunes a checkpoint one-shot from a config;
//! `diff` compares two checkpoints. Bad input exits with status 1 and the problem on stderr;
//! a usage error with status 2.

/// `println!` for command output: a closed pipe (`prune inspect ... | head`) ends the command
/// quietly, any other write error with status 1.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_out(format_args!($($arg)*))
    };
}

/// Writes one line of command output (see [`outln`]).
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if let Err(e) = writeln!(std::io::stdout().lock(), "{args}") {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("prune: writing the output: {e}");
        std::process::exit(1);
    }
}

mod apply;
mod diff;
mod inspect;
mod plan;
mod progress;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "prune",
    version,
    about = "Neural-network pruning from INC 1.x configs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config and print the resolved plan: every pruner with its global values
    /// filled in and the sparsity it holds at each epoch.
    Check {
        /// The INC 1.x YAML file.
        config: PathBuf,
        /// Epochs shown (default: through the last scheduled epoch, plus one).
        #[arg(long)]
        epochs: Option<usize>,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Report every tensor of a safetensors file: dtype, shape, zeros, sparsity, and whether
    /// its zeros follow N:M and tile patterns.
    Inspect {
        /// The checkpoint.
        file: PathBuf,
        /// Patterns to check, as a config writes them (`2:4`, `4x1`); repeatable.
        #[arg(long = "pattern", default_values = ["2:4", "4x1"])]
        patterns: Vec<String>,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Prune a checkpoint one-shot: every tensor the config names, to the sparsity its
    /// schedule holds at the epoch, with the masks the training hooks compute; every other
    /// tensor, the metadata and every dtype kept.
    Apply(apply::Args),
    /// Compare two checkpoints: which tensors changed, sparsity before and after, and the
    /// largest change of a weight kept in the second.
    Diff {
        /// The original.
        a: PathBuf,
        /// The pruned (or otherwise changed) one.
        b: PathBuf,
        /// Exit with status 1 unless B is a pruning of A: same tensors, dtypes and shapes, and
        /// every weight non-zero in B equal to A's.
        #[arg(long)]
        require_pruning: bool,
        /// One JSON object instead of the table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check {
            config,
            epochs,
            json,
        } => plan::check(&config.to_string_lossy(), epochs, json),
        Command::Inspect {
            file,
            patterns,
            json,
        } => inspect::run(&file, &patterns, json),
        Command::Apply(args) => apply::run(&args),
        Command::Diff {
            a,
            b,
            require_pruning,
            json,
        } => diff::run(&a, &b, require_pruning, json),
    }
}
