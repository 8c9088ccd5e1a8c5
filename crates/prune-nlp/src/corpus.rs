//! Sentences of English prose, grouped by document, with a held-out split by document.
//!
//! File format (what `scripts/setup.sh minilm` writes from Python's pydoc topics): one
//! `document<TAB>sentence` per line, sentences in reading order.

use prune_core::{PruneError, Result};
use std::path::Path;

/// One sentence and the document it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sentence {
    /// Document (topic) name.
    pub document: String,
    /// The sentence.
    pub text: String,
}

/// Sentences in reading order.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// All sentences.
    pub sentences: Vec<Sentence>,
}

impl Corpus {
    /// Reads a `document<TAB>sentence` file; fails naming the first malformed line.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = crate::read_text(path)?;
        let mut sentences = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let (document, sentence) =
                line.split_once('\t').ok_or_else(|| PruneError::Backend {
                    backend: "corpus".into(),
                    message: format!(
                        "{}:{}: expected document<TAB>sentence",
                        path.display(),
                        i + 1
                    ),
                })?;
            sentences.push(Sentence {
                document: document.to_string(),
                text: sentence.to_string(),
            });
        }
        Ok(Corpus { sentences })
    }

    /// Splits by document: every `every`-th document (in order of first appearance) is held
    /// out, so no held-out sentence shares a document with a training one.
    pub fn split(&self, every: usize) -> (Corpus, Corpus) {
        let mut documents: Vec<&str> = Vec::new();
        let (mut train, mut held) = (Vec::new(), Vec::new());
        for s in &self.sentences {
            let k = match documents.iter().position(|d| *d == s.document) {
                Some(k) => k,
                None => {
                    documents.push(&s.document);
                    documents.len() - 1
                }
            };
            if every > 0 && k % every == every - 1 {
                held.push(s.clone());
            } else {
                train.push(s.clone());
            }
        }
        (Corpus { sentences: train }, Corpus { sentences: held })
    }

    /// Neighbouring sentences of one document, `(i, i + 1)`: pairs that are about the same
    /// thing, for a contrastive objective.
    pub fn neighbour_pairs(&self) -> Vec<(usize, usize)> {
        (1..self.sentences.len())
            .filter(|&i| self.sentences[i].document == self.sentences[i - 1].document)
            .map(|i| (i - 1, i))
            .collect()
    }

    /// The texts of the sentences at `indices`.
    pub fn texts(&self, indices: &[usize]) -> Vec<&str> {
        indices
            .iter()
            .map(|&i| self.sentences[i].text.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Corpus {
        let rows = [
            ("a", "1"),
            ("a", "2"),
            ("b", "3"),
            ("c", "4"),
            ("c", "5"),
            ("c", "6"),
        ];
        Corpus {
            sentences: rows
                .iter()
                .map(|(d, t)| Sentence {
                    document: d.to_string(),
                    text: t.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn split_holds_out_whole_documents() {
        let (train, held) = corpus().split(2);
        let held_docs: Vec<&str> = held.sentences.iter().map(|s| s.document.as_str()).collect();
        assert_eq!(held_docs, vec!["b"]);
        assert_eq!(train.sentences.len(), 5);
    }

    #[test]
    fn pairs_stay_inside_a_document() {
        assert_eq!(corpus().neighbour_pairs(), vec![(0, 1), (3, 4), (4, 5)]);
    }
}
