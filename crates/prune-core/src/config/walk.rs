//! A small typed reader over `serde_yaml::Value` that records every problem with its YAML path:
//! core reads its sections with it, and a crate that reads a section of its own (the built-in
//! loop's `train`) does the same.

use crate::error::{ConfigProblem, ConfigProblems, PruneError, Result};
use crate::suggest::unknown_key;
use serde_yaml::{Mapping, Value};

/// Collects problems while reading a YAML tree.
#[derive(Default)]
pub struct Walker {
    /// Every problem found so far, in reading order.
    pub problems: Vec<ConfigProblem>,
}

/// Strips a YAML tag such as `!Pruner`, returning the tagged value.
pub fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

/// Joins a parent path and a key.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match untag(v) {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl Walker {
    /// The value read, or a config error naming `source_name` and every problem found.
    pub fn finish<T>(self, value: Option<T>, source_name: &str) -> Result<T> {
        match value {
            Some(v) if self.problems.is_empty() => Ok(v),
            _ => Err(PruneError::Config {
                source_name: source_name.to_string(),
                problems: ConfigProblems(self.problems),
            }),
        }
    }

    /// Records a problem at `path`.
    pub fn problem(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(ConfigProblem {
            path: path.into(),
            reason: reason.into(),
        });
    }

    /// Records that the value at `path` is not what was expected: `expected <expected>, found
    /// <its kind>`.
    fn wrong(&mut self, path: impl Into<String>, expected: &str, found: &Value) {
        self.problem(path, format!("expected {expected}, found {}", kind(found)));
    }

    /// The value as a mapping, or a problem. A null counts as an empty mapping.
    pub fn mapping<'v>(&mut self, v: &'v Value, path: &str) -> Option<&'v Mapping> {
        static EMPTY: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
        match untag(v) {
            Value::Mapping(m) => Some(m),
            Value::Null => Some(EMPTY.get_or_init(Mapping::new)),
            other => {
                self.wrong(path, "a mapping", other);
                None
            }
        }
    }

    /// Reports keys of `m` that are not in `known`, with the nearest known key.
    pub fn check_keys(&mut self, m: &Mapping, path: &str, known: &[&str]) {
        for k in m.keys() {
            match k.as_str() {
                Some(key) if known.contains(&key) => {}
                Some(key) => self.problem(join(path, key), unknown_key(key, known)),
                None => self.problem(path, format!("a key must be a string, found {}", kind(k))),
            }
        }
    }

    /// The f64 at `key`, if present and a number.
    pub fn f64(&mut self, m: &Mapping, path: &str, key: &str) -> Option<f64> {
        let v = get(m, key)?;
        match untag(v) {
            Value::Number(n) => n.as_f64(),
            other => {
                self.wrong(join(path, key), "a number", other);
                None
            }
        }
    }

    /// The non-negative integer at `key`, if present and whole.
    pub fn usize(&mut self, m: &Mapping, path: &str, key: &str) -> Option<usize> {
        let v = get(m, key)?;
        match untag(v) {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64().map(|x| x as usize),
            Value::Number(n) => {
                self.problem(
                    join(path, key),
                    format!("expected a whole number >= 0, found {n}"),
                );
                None
            }
            other => {
                self.wrong(join(path, key), "a whole number", other);
                None
            }
        }
    }

    /// The boolean at `key`; accepts YAML booleans and the strings True/False/true/false.
    pub fn bool(&mut self, m: &Mapping, path: &str, key: &str) -> Option<bool> {
        let v = get(m, key)?;
        match untag(v) {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            other => {
                self.wrong(join(path, key), "True or False", other);
                None
            }
        }
    }

    /// The string at `key`.
    pub fn string(&mut self, m: &Mapping, path: &str, key: &str) -> Option<String> {
        let v = get(m, key)?;
        match untag(v) {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong(join(path, key), "a string", other);
                None
            }
        }
    }

    /// A list of strings at `key` (a single string counts as a list of one; null as empty).
    pub fn strings(&mut self, m: &Mapping, path: &str, key: &str) -> Vec<String> {
        let Some(v) = get(m, key) else {
            return Vec::new();
        };
        match untag(v) {
            Value::Null => Vec::new(),
            Value::String(s) => vec![s.clone()],
            Value::Sequence(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match untag(item) {
                        Value::String(s) => out.push(s.clone()),
                        other => self.wrong(format!("{}[{i}]", join(path, key)), "a string", other),
                    }
                }
                out
            }
            other => {
                self.wrong(join(path, key), "a list of strings", other);
                Vec::new()
            }
        }
    }
}

/// The value at `key` of a mapping.
pub fn get<'m>(m: &'m Mapping, key: &str) -> Option<&'m Value> {
    m.get(Value::String(key.to_string()))
}
