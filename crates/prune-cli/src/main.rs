//! The `prune` command.
//!
//! ```text
//! prune check CONFIG.yaml [--epochs N] [--json]
//! ```
//! validates a pruning configuration (its `train` section as `fit()` reads it) and prints the resolved plan: every pruner with its global
//! values filled in and the sparsity it holds at each epoch. A bad configuration exits with
//! status 1 and every problem on stderr.

mod plan;

use std::process::ExitCode;

const USAGE: &str = "usage: prune check CONFIG.yaml [--epochs N] [--json]";

struct CheckArgs {
    file: String,
    epochs: Option<usize>,
    json: bool,
}

fn parse_check(args: &[String]) -> Result<CheckArgs, String> {
    let mut file = None;
    let mut epochs = None;
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--epochs" => {
                let v = it.next().ok_or("--epochs needs a number")?;
                epochs = Some(
                    v.parse::<usize>()
                        .map_err(|_| format!("--epochs: `{v}` is not a whole number"))?,
                );
            }
            s if s.starts_with("--") => return Err(format!("unknown option `{s}`")),
            s if file.is_none() => file = Some(s.to_string()),
            s => return Err(format!("unexpected argument `{s}`")),
        }
    }
    Ok(CheckArgs {
        file: file.ok_or("missing CONFIG.yaml")?,
        epochs,
        json,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("check") => match parse_check(&args[1..]) {
            Ok(a) => plan::check(&a.file, a.epochs, a.json),
            Err(e) => {
                eprintln!("prune check: {e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("prune: unknown command `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
