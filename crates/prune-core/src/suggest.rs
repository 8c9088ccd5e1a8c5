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

/// The message for a word that is none of `known`: `unknown <what> `<word>``, the nearest known
/// word when it is a likely typo, then `<listed>` and every known word, e.g.
/// ``unknown optimizer `Adm` (did you mean `Adam`?); INC defines SGD, Adam, AdamW``.
pub fn unknown(what: &str, word: &str, known: &[&str], listed: &str) -> String {
    let hint = nearest(word, known)
        .map(|n| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default();
    format!(
        "unknown {what} `{word}`{hint}; {listed} {}",
        known.join(", ")
    )
}

/// The message for a key of a mapping that is none of `known`, whose path already names it:
/// ``unknown key; did you mean `<nearest>`?``, or every known key when none is near.
pub fn unknown_key(key: &str, known: &[&str]) -> String {
    match nearest(key, known) {
        Some(n) => format!("unknown key; did you mean `{n}`?"),
        None => format!("unknown key; expected one of: {}", known.join(", ")),
    }
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
    fn unknown_words_are_named_with_the_nearest_and_the_known() {
        let known = ["SGD", "Adam", "AdamW"];
        assert_eq!(
            unknown("optimizer", "Adm", &known, "INC defines"),
            "unknown optimizer `Adm` (did you mean `Adam`?); INC defines SGD, Adam, AdamW"
        );
        assert_eq!(
            unknown("optimizer", "RMSprop", &known, "INC defines"),
            "unknown optimizer `RMSprop`; INC defines SGD, Adam, AdamW"
        );
        assert_eq!(
            unknown_key("axes", &["weight", "axis", "block"]),
            "unknown key; did you mean `axis`?"
        );
        assert_eq!(
            unknown_key("zzzzzzzz", &["weight", "axis"]),
            "unknown key; expected one of: weight, axis"
        );
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
