//! FastFormers-style structured pruning of a real sentence encoder: all-MiniLM-L6-v2 loses a
//! third of its attention heads (12 -> 8 per layer) and FFN units (1536 -> 1024), and with
//! `--hidden H` hidden dimensions (384 -> H, through the whole encoder), ranked by gradient
//! importance from a contrastive objective on English prose (Python's pydoc topics), then is
//! fine-tuned by distillation against the dense model's sentence embeddings. Reports
//! parameters, forward latency (median, dense and pruned in this process) and the cosine
//! similarity of pruned vs dense embeddings on held-out documents (in the hidden dimensions
//! the pruned model keeps).
//!
//! bash scripts/setup.sh minilm        # once: the model and the sentences into .deps/minilm
//! cargo run --release --example minilm [-- --json] [--backend burn|torch] [--heads 8] [--ffn 1024]
//!     [--hidden 256] [--importance-steps N] [--finetune-steps N] [--batch N] [--config FILE]
//!     [--save DIR]
//!
//! Without `--hidden` the config is examples/configs/minilm_heads.yaml (heads and FFN units,
//! `--heads` / `--ffn` change their targets). With `--hidden H` it is
//! examples/configs/minilm_hidden.yaml, which prunes all three structures; heads and FFN units
//! are pruned only when `--heads` / `--ffn` are given too.
//!
//! `--save DIR` writes the pruned model as DIR/model.safetensors (Hugging Face names, the new
//! shapes) and DIR/config.json (MiniLM's, brought to the new sizes), with the tokenizer beside
//! them; torch's `Bert::from_dir` and burn's `BertModel::from_dir` load the folder as is. DIR/check.json holds a few
//! held-out sentences' token ids and this run's embeddings of them, for
//! scripts/check_pruned_bert.py (an independent NumPy forward pass of the two files).

use anyhow::{bail, Context, Result};
use prune::nlp::{Corpus, Encoded, WordPiece};
use prune::LayerOutcome;
use prune::PruningConfig;
use std::path::PathBuf;
use std::time::Instant;

#[cfg(feature = "burn")]
mod burn_run;
#[cfg(feature = "torch")]
mod torch_run;

/// What the flow needs from one framework.
pub trait Student {
    /// Dense-model sentence embeddings `[rows, hidden]`, row-major.
    fn teacher_embed(&self, batch: &Encoded) -> Result<Vec<f32>>;
    /// Student sentence embeddings `[rows, hidden]`, without building a gradient graph.
    fn student_embed(&self, batch: &Encoded) -> Result<Vec<f32>>;
    /// One importance step: in-batch contrastive loss of `a[i]` against `b[i]` with a
    /// `head_mask` input, backward, gradients to the session; no weight update. Returns the loss.
    fn importance_step(&mut self, a: &Encoded, b: &Encoded) -> Result<f32>;
    /// Opens the importance epoch.
    fn begin(&mut self) -> Result<()>;
    /// Closes it: the session shrinks the model.
    fn end(&mut self) -> Result<()>;
    /// Per layer: importance and kept groups.
    fn outcome(&self) -> Vec<LayerOutcome>;
    /// One distillation step (1 - cosine to the teacher's embeddings), Adam. Returns the loss.
    fn distill_step(&mut self, batch: &Encoded, teacher: &[f32], lr: f64) -> Result<f32>;
    /// Parameters of the teacher and of the student.
    fn params(&self) -> Result<(usize, usize)>;
    /// Heads and FFN units per layer of the student, read from its weights.
    fn sizes(&self) -> (Vec<usize>, Vec<usize>);
    /// The student's weights, canonical layout, Hugging Face names.
    fn export(&self) -> Result<prune::io::TensorMap>;
    /// Every slice the session's shrinks kept.
    fn shrunk(&self) -> Vec<prune::ShrinkOp>;
}

struct Args {
    json: bool,
    backend: String,
    config: Option<String>,
    heads: Option<usize>,
    ffn: Option<usize>,
    hidden: Option<usize>,
    importance_steps: usize,
    finetune_steps: usize,
    batch: usize,
    lr: f64,
    latency_runs: usize,
    save: Option<PathBuf>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        json: false,
        backend: "burn".into(),
        config: None,
        heads: None,
        ffn: None,
        hidden: None,
        importance_steps: 12,
        finetune_steps: 120,
        batch: 32,
        lr: 1e-4,
        latency_runs: 15,
        save: None,
    };
    let mut it = std::env::args().skip(1);
    let num = |it: &mut std::iter::Skip<std::env::Args>, flag: &str| -> Result<usize> {
        it.next()
            .with_context(|| format!("{flag} needs a number"))?
            .parse()
            .with_context(|| format!("{flag} needs a whole number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => a.json = true,
            "--backend" => a.backend = it.next().context("--backend needs burn or torch")?,
            "--config" => a.config = Some(it.next().context("--config needs a file")?),
            "--heads" => a.heads = Some(num(&mut it, "--heads")?),
            "--ffn" => a.ffn = Some(num(&mut it, "--ffn")?),
            "--hidden" => a.hidden = Some(num(&mut it, "--hidden")?),
            "--importance-steps" => a.importance_steps = num(&mut it, "--importance-steps")?,
            "--finetune-steps" => a.finetune_steps = num(&mut it, "--finetune-steps")?,
            "--batch" => a.batch = num(&mut it, "--batch")?,
            "--latency-runs" => a.latency_runs = num(&mut it, "--latency-runs")?.max(1),
            "--lr" => a.lr = it.next().context("--lr needs a number")?.parse()?,
            "--save" => a.save = Some(it.next().context("--save needs a folder")?.into()),
            other => bail!(
                "unknown argument `{other}`; expected --json, --backend B, --config FILE, --heads N, --ffn N, --hidden N, \
                 --importance-steps N, --finetune-steps N, --batch N, --latency-runs N, --lr X, --save DIR"
            ),
        }
    }
    Ok(a)
}

/// Where `scripts/setup.sh minilm` puts the model and the sentences.
pub fn minilm_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("PRUNE_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".deps/minilm"));
    if !dir.join("model.safetensors").exists() {
        bail!(
            "MiniLM is not in {}: run `bash scripts/setup.sh minilm` (or set PRUNE_MINILM_DIR)",
            dir.display()
        );
    }
    Ok(dir)
}

/// The configuration with `--heads` / `--ffn` / `--hidden` applied to the pruners that keep
/// heads (stride > 1), FFN units (stride 1) and hidden dimensions (`coupled_importance`); with
/// `--hidden`, heads and FFN pruners stay only when their flag is given. Also returns the
/// hidden pruner's index.
fn config(args: &Args) -> Result<(PruningConfig, Option<usize>)> {
    let default = match args.hidden {
        Some(_) => "examples/configs/minilm_hidden.yaml",
        None => "examples/configs/minilm_heads.yaml",
    };
    let mut config = PruningConfig::from_file(args.config.as_deref().unwrap_or(default))?;
    let pruners = &mut config.weight_compression.pruners;
    if args.hidden.is_some() {
        pruners.retain(|p| {
            let stride = p.parameters.stride.unwrap_or(1);
            p.parameters.coupled_importance
                || (stride > 1 && args.heads.is_some())
                || (stride == 1 && args.ffn.is_some())
        });
    }
    let mut hidden_pruner = None;
    for (i, p) in pruners.iter_mut().enumerate() {
        let stride = p.parameters.stride.unwrap_or(1);
        let target = if p.parameters.coupled_importance {
            hidden_pruner = Some(i);
            args.hidden
        } else if stride > 1 {
            args.heads
        } else {
            args.ffn
        };
        if let Some(t) = target {
            p.parameters.target = Some(t);
        }
    }
    Ok((config, hidden_pruner))
}

/// Each row of `[rows, dense]` embeddings restricted to the `kept` dimensions, L2-normalised:
/// the dense model's embedding where the pruned model has coordinates.
fn restrict(embeddings: &[f32], dense: usize, kept: &[usize]) -> Vec<f32> {
    embeddings
        .chunks(dense)
        .flat_map(|row| {
            let picked: Vec<f32> = kept.iter().map(|&j| row[j]).collect();
            let norm = picked.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            picked.into_iter().map(move |v| v / norm)
        })
        .collect()
}

/// Pearson correlation, over every pair of rows, of the pairwise cosine similarities of two
/// sets of L2-normalised embeddings (the sentence-similarity structure, whatever their width).
fn similarity_correlation(a: &[f32], a_width: usize, b: &[f32], b_width: usize) -> f64 {
    let rows = a.len() / a_width;
    let dot = |x: &[f32], y: &[f32]| -> f64 {
        x.iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum()
    };
    fn row(e: &[f32], w: usize, r: usize) -> &[f32] {
        &e[r * w..(r + 1) * w]
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..rows {
        for j in i + 1..rows {
            xs.push(dot(row(a, a_width, i), row(a, a_width, j)));
            ys.push(dot(row(b, b_width, i), row(b, b_width, j)));
        }
    }
    let n = xs.len().max(1) as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let vx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    let vy: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    cov / (vx * vy).sqrt().max(1e-300)
}

fn cosine_mean(a: &[f32], b: &[f32], hidden: usize) -> f64 {
    let rows = a.len() / hidden;
    let mut total = 0.0;
    for r in 0..rows {
        let (x, y) = (
            &a[r * hidden..(r + 1) * hidden],
            &b[r * hidden..(r + 1) * hidden],
        );
        let dot: f64 = x
            .iter()
            .zip(y)
            .map(|(p, q)| f64::from(*p) * f64::from(*q))
            .sum();
        let nx: f64 = x.iter().map(|p| f64::from(*p).powi(2)).sum::<f64>().sqrt();
        let ny: f64 = y.iter().map(|q| f64::from(*q).powi(2)).sum::<f64>().sqrt();
        total += dot / (nx * ny).max(1e-12);
    }
    total / rows.max(1) as f64
}

fn median_ms(mut f: impl FnMut() -> Result<()>, runs: usize) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Embeddings of many sentences, `batch` at a time.
fn embed_all(
    texts: &[&str],
    tok: &WordPiece,
    batch: usize,
    f: impl Fn(&Encoded) -> Result<Vec<f32>>,
) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for chunk in texts.chunks(batch) {
        out.extend(f(&tok.encode_batch(chunk, MAX_TOKENS))?);
    }
    Ok(out)
}

const MAX_TOKENS: usize = 128;
const HIDDEN: usize = 384;

fn main() -> Result<()> {
    let args = args()?;
    let (config, hidden_pruner) = config(&args)?;
    let dir = minilm_dir()?;
    let tok = WordPiece::from_file(dir.join("tokenizer.json"))?;
    let corpus = Corpus::from_file(dir.join("sentences.tsv"))?;
    let (train, held) = corpus.split(5);
    let held_texts: Vec<&str> = held.sentences.iter().map(|s| s.text.as_str()).collect();
    let train_texts: Vec<&str> = train.sentences.iter().map(|s| s.text.as_str()).collect();
    let pairs = train.neighbour_pairs();
    let log = |m: String| {
        if !args.json {
            println!("{m}");
        }
    };
    log(format!(
        "corpus: {} training sentences ({} neighbour pairs), {} held-out sentences from other documents",
        train_texts.len(),
        pairs.len(),
        held_texts.len()
    ));

    let t0 = Instant::now();
    let mut student: Box<dyn Student> = match args.backend.as_str() {
        #[cfg(feature = "burn")]
        "burn" => Box::new(burn_run::BurnStudent::load(&dir, config)?),
        #[cfg(feature = "torch")]
        "torch" => Box::new(torch_run::TorchStudent::load(&dir, config)?),
        other => bail!("backend `{other}` is not available in this build; use burn, or --features torch for torch"),
    };
    let (params_dense, _) = student.params()?;

    // Importance: an in-batch contrastive objective on neighbouring sentences.
    student.begin()?;
    let per = args.batch.min(pairs.len().max(1));
    for step in 0..args.importance_steps {
        let chunk: Vec<(usize, usize)> = (0..per)
            .map(|k| pairs[(step * per + k * 7) % pairs.len()])
            .collect();
        let a: Vec<usize> = chunk.iter().map(|p| p.0).collect();
        let b: Vec<usize> = chunk.iter().map(|p| p.1).collect();
        let loss = student.importance_step(
            &tok.encode_batch(&train.texts(&a), MAX_TOKENS),
            &tok.encode_batch(&train.texts(&b), MAX_TOKENS),
        )?;
        log(format!(
            "importance step {step}: contrastive loss {loss:.4}"
        ));
    }
    student.end()?;
    let (heads, ffn) = student.sizes();
    log(format!(
        "pruned: heads per layer {heads:?}, FFN units per layer {ffn:?}"
    ));
    for o in student.outcome().iter().filter(|o| o.groups <= 64) {
        log(format!(
            "  pruner {} layer {}: kept heads {:?}",
            o.pruner,
            o.layer,
            o.kept.as_deref().unwrap_or(&[])
        ));
    }
    let (_, params_pruned) = student.params()?;
    let outcome = student.outcome();
    let kept_hidden: Vec<usize> = hidden_pruner
        .and_then(|i| outcome.iter().find(|o| o.pruner == i))
        .and_then(|o| o.kept.clone())
        .unwrap_or_else(|| (0..HIDDEN).collect());
    let hidden = kept_hidden.len();
    if hidden < HIDDEN {
        log(format!("pruned: hidden size {HIDDEN} -> {hidden}"));
    }

    let held_dense = embed_all(&held_texts, &tok, 64, |b| student.teacher_embed(b))?;
    let held_teacher = restrict(&held_dense, HIDDEN, &kept_hidden);
    let held_before = embed_all(&held_texts, &tok, 64, |b| student.student_embed(b))?;
    let cosine_before = cosine_mean(&held_teacher, &held_before, hidden);
    log(format!(
        "held-out cosine to dense before fine-tuning: {cosine_before:.4}"
    ));

    // Distillation towards the dense model's sentence embeddings.
    let mut order: Vec<usize> = (0..train_texts.len()).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for i in (1..order.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        order.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    for step in 0..args.finetune_steps {
        let idx: Vec<usize> = (0..args.batch)
            .map(|k| order[(step * args.batch + k) % order.len()])
            .collect();
        let enc = tok.encode_batch(&train.texts(&idx), MAX_TOKENS);
        let teacher = restrict(&student.teacher_embed(&enc)?, HIDDEN, &kept_hidden);
        let loss = student.distill_step(&enc, &teacher, args.lr)?;
        if step % 10 == 0 || step + 1 == args.finetune_steps {
            log(format!("distillation step {step}: 1 - cosine {loss:.4}"));
        }
    }
    let held_after = embed_all(&held_texts, &tok, 64, |b| student.student_embed(b))?;
    let cosine_mean = cosine_mean(&held_teacher, &held_after, hidden);
    let correlation = similarity_correlation(&held_dense, HIDDEN, &held_after, hidden);

    let probe: Vec<&str> = held_texts.iter().take(32).copied().collect();
    let enc = tok.encode_batch(&probe, MAX_TOKENS);
    let mut latency_dense = Vec::new();
    let mut latency_pruned = Vec::new();
    // Alternate dense and pruned rounds so drift on the machine hits both alike.
    for _ in 0..3 {
        latency_dense.push(median_ms(
            || student.teacher_embed(&enc).map(|_| ()),
            args.latency_runs,
        )?);
        latency_pruned.push(median_ms(
            || student.student_embed(&enc).map(|_| ()),
            args.latency_runs,
        )?);
    }
    latency_dense.sort_by(f64::total_cmp);
    latency_pruned.sort_by(f64::total_cmp);
    let (dense_ms, pruned_ms) = (latency_dense[1], latency_pruned[1]);
    let speedup = dense_ms / pruned_ms;

    if let Some(out) = &args.save {
        save(out, &dir, student.as_ref(), &tok, &held_texts)?;
        log(format!("saved the pruned model to {}", out.display()));
    }

    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "backend": args.backend,
                "heads": heads,
                "ffn": ffn,
                "hidden": hidden,
                "hidden_kept": kept_hidden,
                "params_dense": params_dense,
                "params_pruned": params_pruned,
                "latency_ms_dense": dense_ms,
                "latency_ms_pruned": pruned_ms,
                "speedup": speedup,
                "cosine_mean_before_finetune": cosine_before,
                "cosine_mean": cosine_mean,
                "similarity_correlation": correlation,
                "held_out_sentences": held_texts.len(),
                "latency_batch": [enc.rows, enc.seq],
                "importance_steps": args.importance_steps,
                "finetune_steps": args.finetune_steps,
                "seconds": t0.elapsed().as_secs_f64(),
            })
        );
    } else {
        println!(
            "parameters: {params_dense} dense -> {params_pruned} pruned ({:.1}%)",
            100.0 * params_pruned as f64 / params_dense as f64
        );
        println!(
            "latency (batch {}x{} tokens, median of {} runs, 3 alternating rounds): dense {dense_ms:.1} ms, pruned {pruned_ms:.1} ms, speedup {speedup:.2}x",
            enc.rows, enc.seq, args.latency_runs
        );
        println!("held-out cosine to dense: {cosine_before:.4} after pruning, {cosine_mean:.4} after {} distillation steps", args.finetune_steps);
        println!("held-out sentence-similarity correlation with dense: {correlation:.4}");
        println!("total {:.0} s", t0.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Writes the pruned model's folder: model.safetensors, config.json (MiniLM's at the new sizes),
/// the tokenizer, and check.json (token ids of a few held-out sentences with this run's
/// embeddings of them, for scripts/check_pruned_bert.py).
fn save(
    out: &std::path::Path,
    dense_dir: &std::path::Path,
    student: &dyn Student,
    tok: &WordPiece,
    held: &[&str],
) -> Result<()> {
    std::fs::create_dir_all(out)?;
    prune::io::write_f32(
        out.join("model.safetensors"),
        &student.export()?,
        &Default::default(),
    )?;
    let config_path = dense_dir.join("config.json");
    let dense: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path)?)?;
    let config =
        prune::nlp::hf_config::updated(&config_path, &dense, &student.shrunk())?.unwrap_or(dense);
    std::fs::write(
        out.join("config.json"),
        serde_json::to_string_pretty(&config)?,
    )?;
    std::fs::copy(dense_dir.join("tokenizer.json"), out.join("tokenizer.json"))?;
    let mut sentences = Vec::new();
    for text in held.iter().take(8) {
        let enc = tok.encode_batch(&[*text], MAX_TOKENS);
        sentences.push(serde_json::json!({
            "text": text,
            "ids": enc.ids,
            "embedding": student.student_embed(&enc)?,
        }));
    }
    std::fs::write(
        out.join("check.json"),
        serde_json::to_string(&serde_json::json!({ "sentences": sentences }))?,
    )?;
    Ok(())
}
