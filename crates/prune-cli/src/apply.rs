//! `prune apply`: one-shot pruning of a checkpoint from a config.

use crate::plan::print_error;
use crate::progress::Progress;
use prune_core::{PruneError, PruningConfig, Result};
use prune_io::oneshot::{self, TensorPlan};
use prune_io::{write_masked, Checkpoint};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `prune apply` was asked to do.
#[derive(clap::Args)]
pub struct Args {
    /// The INC 1.x YAML file.
    pub config: PathBuf,
    /// The checkpoint to prune.
    pub input: PathBuf,
    /// Where the pruned checkpoint goes.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Epoch of the schedule (default: the end, each pruner's final target).
    #[arg(long)]
    pub epoch: Option<usize>,
    /// Replace the output if it exists.
    #[arg(long)]
    pub force: bool,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One pruned tensor as reported.
struct Pruned {
    plan: TensorPlan,
    elements: usize,
    pruned: usize,
}

/// Refuses an output that exists (without `--force`), that is the input, or whose folder
/// cannot take a new file, before any work is done.
fn check_output(args: &Args) -> Result<()> {
    let out = &args.output;
    let io = |source| PruneError::Io {
        path: out.display().to_string(),
        source,
    };
    if out.exists() {
        if !args.force {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists (add --force to replace it)",
            )));
        }
        let same = std::fs::canonicalize(out).ok() == std::fs::canonicalize(&args.input).ok();
        if same {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is the input file; write the pruned checkpoint elsewhere",
            )));
        }
    }
    let folder = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = folder.join(format!(".prune-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|source| PruneError::Io {
            path: folder.display().to_string(),
            source,
        })?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

fn prune(args: &Args) -> Result<Vec<Pruned>> {
    let config = PruningConfig::from_file(&args.config)?;
    check_output(args)?;
    let checkpoint = Checkpoint::open(&args.input)?;
    let plans = oneshot::plan(&config, &checkpoint, args.epoch)?;
    let bytes_of = |name: &str| checkpoint.tensor(name).map_or(0, |e| e.byte_len());
    let selecting = Progress::new(
        "selecting",
        plans.iter().map(|p| bytes_of(&p.name) as u64).sum(),
    );
    let masks = oneshot::masks(&config, &checkpoint, &plans, &|p| {
        selecting.add(bytes_of(&p.name))
    })?;
    selecting.finish();
    let writing = Progress::new("writing", checkpoint.file_len() as u64);
    // A tensor's bytes are written after the callback: its pages are released at the next one.
    let previous = std::cell::Cell::new(None);
    write_masked(&args.output, &checkpoint, &masks, &|e| {
        writing.add(e.byte_len());
        if let Some(done) = previous.replace(Some(e)) {
            checkpoint.release(done);
        }
    })?;
    writing.finish();
    Ok(plans
        .into_iter()
        .map(|plan| {
            let elements = checkpoint.tensor(&plan.name).map_or(0, |e| e.numel());
            let pruned = masks.get(&plan.name).map_or(0, |m| {
                m.len
                    - m.words
                        .iter()
                        .map(|w| w.count_ones() as usize)
                        .sum::<usize>()
            });
            Pruned {
                plan,
                elements,
                pruned,
            }
        })
        .collect())
}

/// Runs `prune apply`.
pub fn run(args: &Args) -> ExitCode {
    let pruned = match prune(args) {
        Ok(p) => p,
        Err(e) => {
            print_error(&e);
            return ExitCode::from(1);
        }
    };
    let elements: usize = pruned.iter().map(|p| p.elements).sum();
    let zeroed: usize = pruned.iter().map(|p| p.pruned).sum();
    let overall = if elements == 0 {
        0.0
    } else {
        zeroed as f64 / elements as f64
    };
    if args.json {
        let tensors: Vec<_> = pruned
            .iter()
            .map(|p| {
                json!({
                    "name": p.plan.name,
                    "pruner": p.plan.pruner,
                    "prune_type": p.plan.prune_type.as_str(),
                    "target_sparsity": p.plan.sparsity,
                    "elements": p.elements,
                    "pruned": p.pruned,
                })
            })
            .collect();
        outln!(
            "{}",
            json!({
                "output": args.output.display().to_string(),
                "tensors": tensors,
                "pruned": zeroed,
                "elements": elements,
                "sparsity": overall,
            })
        );
        return ExitCode::SUCCESS;
    }
    let width = pruned.iter().map(|p| p.plan.name.len()).max().unwrap_or(4);
    for p in &pruned {
        let target = p.plan.sparsity.map_or("lock".into(), |s| format!("{s:.4}"));
        outln!(
            "{:<width$}  pruner {}  {:<15}  target {:>6}  pruned {}/{}",
            p.plan.name,
            p.plan.pruner,
            p.plan.prune_type.as_str(),
            target,
            p.pruned,
            p.elements
        );
    }
    outln!(
        "{}: {} tensors pruned, {zeroed} of {elements} weights ({overall:.4})",
        display(&args.output),
        pruned.iter().filter(|p| p.plan.sparsity.is_some()).count()
    );
    ExitCode::SUCCESS
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
