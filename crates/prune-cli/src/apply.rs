//! `prune apply`: one-shot pruning of a checkpoint from a config.

use crate::plan::print_error;
use crate::progress::Progress;
use prune_core::{PruneError, PruningConfig, Result};
use prune_io::oneshot::{self, TensorPlan};
use prune_io::shrink_plan::{shrink_plan, ShrinkPlan};
use prune_io::{finish_masked, start_copy, write_pruned, Checkpoint, TensorEntry};
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

/// One shrunk tensor as reported.
struct Shrunk {
    name: String,
    before: Vec<usize>,
    after: Vec<usize>,
}

/// What `prune apply` did.
struct Applied {
    pruned: Vec<Pruned>,
    shrunk: Vec<Shrunk>,
    /// The updated `config.json` written beside the output, if any.
    config_json: Option<PathBuf>,
}

fn folder_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(f) if !f.as_os_str().is_empty() => f.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The input's `config.json` updated to the shrunk sizes, and where it goes (beside the
/// output); `None` when there is no config.json or nothing it records changed. Refuses, before
/// anything is written, an output folder that is the input's (its config.json would no longer
/// describe the input) and a config.json there already (without `--force`).
fn config_json_for(args: &Args, shrinks: &ShrinkPlan) -> Result<Option<(PathBuf, String)>> {
    let source = folder_of(&args.input).join("config.json");
    if shrinks.ops.is_empty() || !source.exists() {
        return Ok(None);
    }
    let io = |path: &Path, source| PruneError::Io {
        path: path.display().to_string(),
        source,
    };
    let text = std::fs::read_to_string(&source).map_err(|e| io(&source, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        io(
            &source,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
        )
    })?;
    let Some(updated) = prune_nlp::hf_config::updated(&source, &value, &shrinks.ops)? else {
        return Ok(None);
    };
    let target = folder_of(&args.output).join("config.json");
    let same = std::fs::canonicalize(folder_of(&args.output)).ok()
        == std::fs::canonicalize(folder_of(&args.input)).ok();
    if same {
        return Err(io(
            &target,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is the input's config.json, which the new sizes would overwrite; write the \
                 pruned checkpoint to another folder",
            ),
        ));
    }
    if target.exists() && !args.force {
        return Err(io(
            &target,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "exists (add --force to replace it)",
            ),
        ));
    }
    let text = serde_json::to_string_pretty(&updated).expect("a JSON value") + "\n";
    Ok(Some((target, text)))
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

fn prune(args: &Args) -> Result<Applied> {
    let config = PruningConfig::from_file(&args.config)?;
    check_output(args)?;
    let checkpoint = Checkpoint::open(&args.input)?;
    let plans = oneshot::plan(&config, &checkpoint, args.epoch)?;
    let shrinks = shrink_plan(&config, &checkpoint)?;
    let masked: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    prune_io::shrink_plan::check_disjoint(&shrinks, &masked)?;
    let config_json = config_json_for(args, &shrinks)?;
    let bytes_of = |name: &str| checkpoint.tensor(name).map_or(0, |e| e.byte_len());
    // A masked-only output starts as a copy of the input, made while the masks are selected.
    let copy = match shrinks.ops.is_empty() {
        true => start_copy(&args.output, &checkpoint)?,
        false => None,
    };
    let selecting = Progress::new(
        "selecting",
        plans.iter().map(|p| bytes_of(&p.name) as u64).sum(),
    );
    let masks = oneshot::masks(&config, &checkpoint, &plans, &|p| {
        selecting.add(bytes_of(&p.name))
    })?;
    selecting.finish();
    // config.json goes to a temporary file first and is renamed in only once the checkpoint
    // is complete: a failure leaves neither.
    let pending = match &config_json {
        Some((target, text)) => {
            let tmp = target.with_extension(format!("json.tmp-{}", std::process::id()));
            std::fs::write(&tmp, text).map_err(|source| PruneError::Io {
                path: tmp.display().to_string(),
                source,
            })?;
            Some((tmp, target.clone()))
        }
        None => None,
    };
    let writing = Progress::new("writing", checkpoint.file_len() as u64);
    let each = |e: &TensorEntry| writing.add(e.byte_len());
    let written = match copy {
        Some(copy) => finish_masked(copy, &checkpoint, &masks, &each),
        None => write_pruned(&args.output, &checkpoint, &masks, &shrinks, &each),
    };
    writing.finish();
    if let Err(e) = written {
        if let Some((tmp, _)) = &pending {
            std::fs::remove_file(tmp).ok();
        }
        return Err(e);
    }
    if let Some((tmp, target)) = &pending {
        std::fs::rename(tmp, target).map_err(|source| PruneError::Io {
            path: target.display().to_string(),
            source,
        })?;
    }
    let pruned = plans
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
        .collect();
    let shrunk = checkpoint
        .tensors()
        .iter()
        .filter_map(|e| {
            shrinks.new_shape(&e.name, &e.shape).map(|after| Shrunk {
                name: e.name.clone(),
                before: e.shape.clone(),
                after,
            })
        })
        .collect();
    Ok(Applied {
        pruned,
        shrunk,
        config_json: pending.map(|(_, target)| target),
    })
}

/// Runs `prune apply`.
pub fn run(args: &Args) -> ExitCode {
    let applied = match prune(args) {
        Ok(a) => a,
        Err(e) => {
            print_error(&e);
            return ExitCode::from(1);
        }
    };
    let pruned = &applied.pruned;
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
                "shrunk": applied.shrunk.iter().map(|t| json!({
                    "name": t.name, "shape_before": t.before, "shape_after": t.after,
                })).collect::<Vec<_>>(),
                "config_json": applied.config_json.as_ref().map(|p| p.display().to_string()),
            })
        );
        return ExitCode::SUCCESS;
    }
    let width = pruned.iter().map(|p| p.plan.name.len()).max().unwrap_or(4);
    for p in pruned {
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
    for t in &applied.shrunk {
        outln!("{}  shrunk {:?} -> {:?}", t.name, t.before, t.after);
    }
    outln!(
        "{}: {} tensors pruned, {zeroed} of {elements} weights ({overall:.4}); {} tensors shrunk",
        display(&args.output),
        pruned.iter().filter(|p| p.plan.sparsity.is_some()).count(),
        applied.shrunk.len()
    );
    if let Some(p) = &applied.config_json {
        outln!("{}: sizes updated", display(p));
    }
    ExitCode::SUCCESS
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
