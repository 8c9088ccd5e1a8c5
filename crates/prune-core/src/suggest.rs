//! Close-match suggestions for misspelt keys and weight names.

/// Levenshtein edit distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The known word nearest to `word`, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, k)| *d <= (k.len().max(word.len()) / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Up to `limit` candidates closest to `word`, best first; names sharing a suffix or prefix rank well.
pub fn closest(word: &str, candidates: &[String], limit: usize) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .map(|c| {
            let d = edit_distance(word, c);
            let bonus = if c.ends_with(word) || word.ends_with(c.as_str()) {
                d / 2
            } else {
                0
            };
            (d - bonus, c)
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(limit)
        .map(|(_, c)| c.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn nearest_finds_typos_only() {
        let known = ["target_sparsity", "start_epoch", "end_epoch"];
        assert_eq!(nearest("target_sparsty", &known), Some("target_sparsity"));
        assert_eq!(nearest("completely_else", &known), None);
    }

    #[test]
    fn closest_prefers_suffix_matches() {
        let names = vec![
            "model.fc1.weight".to_string(),
            "model.fc2.weight".to_string(),
            "x".to_string(),
        ];
        assert_eq!(
            closest("fc1.weight", &names, 1),
            vec!["model.fc1.weight".to_string()]
        );
    }
}
