//! The one error type of the library.

use std::fmt;

/// A problem found in a configuration, located by its YAML path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted YAML path, e.g. `approach.weight_compression.pruners[1].target_sparsity`.
    pub path: String,
    /// What is wrong there.
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Every problem of one configuration, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblems(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} problem{} in the configuration",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.0 {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// Errors of the prune library. Each variant says what is wrong and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// The YAML text could not be parsed at all.
    #[error("{source_name}: YAML syntax error at line {line}, column {column}: {message}")]
    Yaml {
        /// File name, or `<string>`.
        source_name: String,
        /// 1-based line, 0 when unknown.
        line: usize,
        /// 1-based column, 0 when unknown.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The configuration parsed but is not valid; every problem is listed.
    #[error("{source_name}: {problems}")]
    Config {
        /// File name, or `<string>`.
        source_name: String,
        /// All problems, each with its YAML path.
        problems: ConfigProblems,
    },
    /// A name or glob from the configuration matches no weight of the model.
    #[error("pruner {pruner}: `{pattern}` matches no prunable weight of the model{}", candidates_suffix(.candidates))]
    NoMatch {
        /// Index of the pruner in `pruners`.
        pruner: usize,
        /// The name or glob as written.
        pattern: String,
        /// Close weight names, best first.
        candidates: Vec<String>,
    },
    /// One weight is named by two pruners.
    #[error("weight `{weight}` is claimed by pruner {first} and pruner {second}; each weight may have one pruner")]
    DuplicateWeight {
        /// Canonical weight name.
        weight: String,
        /// The first pruner's index.
        first: usize,
        /// The second pruner's index.
        second: usize,
    },
    /// A valid configuration asks for an algorithm this version does not run.
    #[error("pruner {pruner}: prune_type `{prune_type}` is valid but not implemented in this version (available: {available})")]
    NotImplemented {
        /// Index of the pruner in `pruners`.
        pruner: usize,
        /// The algorithm asked for.
        prune_type: String,
        /// The algorithms that run.
        available: String,
    },
    /// A structured (head / row) pruner cannot run as configured on this model.
    #[error("pruner {pruner} (structured): {reason}")]
    Structured {
        /// Index of the pruner in `pruners:`.
        pruner: usize,
        /// What is wrong: weight names, layer numbers, expected vs got.
        reason: String,
    },
    /// A tensor has a shape an operation cannot take.
    #[error("weight `{weight}`: {reason} (shape {shape:?})")]
    Shape {
        /// Canonical weight name, or the operation when no weight is involved.
        weight: String,
        /// The shape found.
        shape: Vec<usize>,
        /// What was expected.
        reason: String,
    },
    /// A weight holds NaN or infinite values where a score is needed.
    #[error(
        "weight `{weight}`: {what} holds {count} non-finite value(s) (NaN or Inf); pruning refused"
    )]
    NonFinite {
        /// Canonical weight name.
        weight: String,
        /// `weight` or `gradient`.
        what: &'static str,
        /// How many values are not finite.
        count: usize,
    },
    /// A weight the session knows is missing from the model given to a hook.
    #[error("weight `{weight}` is not in the model{}", candidates_suffix(.candidates))]
    UnknownWeight {
        /// The name asked for.
        weight: String,
        /// Close names present in the model.
        candidates: Vec<String>,
    },
    /// An operation the backend or the algorithm does not offer.
    #[error("{op} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation.
        op: String,
        /// The backend's name.
        backend: String,
    },
    /// A hook was called in an order the session cannot follow.
    #[error("hook order: {hook} called {reason}")]
    HookOrder {
        /// The hook that was called.
        hook: &'static str,
        /// Why that is out of order.
        reason: String,
    },
    /// An error from the framework underneath.
    #[error("{backend} backend: {message}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// The framework's message.
        message: String,
    },
    /// A saved session state cannot be used: unreadable, another format or version, or written
    /// by another configuration or for another model.
    #[error("session state {path}: {reason}")]
    State {
        /// The state file, or `<memory>`.
        path: String,
        /// What does not match.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

fn candidates_suffix(c: &[String]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!("; close matches: {}", c.join(", "))
    }
}

/// Result with [`PruneError`].
pub type Result<T, E = PruneError> = std::result::Result<T, E>;
