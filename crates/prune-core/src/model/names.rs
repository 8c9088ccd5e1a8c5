//! Matching configured names and globs against a model's canonical weight names.

use crate::error::{PruneError, Result};
use crate::model::WeightInfo;
use crate::suggest::closest;

/// Wrapper prefixes that data-parallel and compiled-model wrappers add to every name.
const WRAPPER_PREFIXES: &[&str] = &["module.", "_orig_mod."];

/// The canonical form of a weight name: wrapper prefixes removed.
pub fn canonical_name(name: &str) -> &str {
    let mut n = name;
    while let Some(p) = WRAPPER_PREFIXES.iter().find(|p| n.starts_with(*p)) {
        n = &n[p.len()..];
    }
    n
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters without a dot and
/// `**` any run at all.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match p {
            [] => n.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=n.len()).any(|i| rec(rest, &n[i..])),
            [b'*', rest @ ..] => {
                let mut i = 0;
                loop {
                    if rec(rest, &n[i..]) {
                        return true;
                    }
                    if i == n.len() || n[i] == b'.' {
                        return false;
                    }
                    i += 1;
                }
            }
            [c, rest @ ..] => n.first() == Some(c) && rec(rest, &n[1..]),
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}

/// Whether a weight is pruned when a pruner names nothing: 2-D and 4-D weights.
pub fn prunable_by_default(w: &WeightInfo) -> bool {
    matches!(w.shape.len(), 2 | 4)
}

/// The weights a pruner acts on, in model order. Every configured name must match something.
pub fn select_weights<'w>(
    pruner: usize,
    names: &[String],
    weights: &'w [WeightInfo],
) -> Result<Vec<&'w WeightInfo>> {
    if names.is_empty() {
        return Ok(weights.iter().filter(|w| prunable_by_default(w)).collect());
    }
    let mut chosen = vec![false; weights.len()];
    for pattern in names {
        let pattern = canonical_name(pattern);
        let mut hit = false;
        for (i, w) in weights.iter().enumerate() {
            if glob_match(pattern, &w.name) {
                chosen[i] = true;
                hit = true;
            }
        }
        if !hit {
            let all: Vec<String> = weights.iter().map(|w| w.name.clone()).collect();
            return Err(PruneError::NoMatch {
                pruner,
                pattern: pattern.to_string(),
                candidates: closest(pattern, &all, 3),
            });
        }
    }
    Ok(weights
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|(w, _)| w)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Layout;

    #[test]
    fn globs_match_one_segment() {
        assert!(glob_match(
            "encoder.layer.*.query.weight",
            "encoder.layer.11.query.weight"
        ));
        assert!(!glob_match(
            "encoder.layer.*.weight",
            "encoder.layer.1.query.weight"
        ));
        assert!(glob_match(
            "encoder.**.weight",
            "encoder.layer.1.query.weight"
        ));
        assert!(glob_match("fc1.weight", "fc1.weight"));
        assert!(!glob_match("fc1.weight", "fc1.weights"));
    }

    #[test]
    fn wrapper_prefixes_are_stripped() {
        assert_eq!(canonical_name("module.fc1.weight"), "fc1.weight");
        assert_eq!(canonical_name("module._orig_mod.fc1.weight"), "fc1.weight");
    }

    #[test]
    fn no_match_lists_candidates() {
        let ws = vec![
            WeightInfo {
                name: "fc1.weight".into(),
                shape: vec![4, 4],
                layout: Layout::Canonical,
            },
            WeightInfo {
                name: "fc1.bias".into(),
                shape: vec![4],
                layout: Layout::Canonical,
            },
        ];
        let err = select_weights(0, &["fc.weight".into()], &ws)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`fc.weight` matches no prunable weight") && err.contains("fc1.weight"),
            "{err}"
        );
        assert_eq!(select_weights(0, &[], &ws).unwrap().len(), 1);
        assert_eq!(select_weights(0, &["fc1.*".into()], &ws).unwrap().len(), 2);
    }
}
