//! BERT WordPiece tokenisation as a Hugging Face `tokenizer.json` describes it: the
//! BertNormalizer (clean text, CJK spacing, lowercase and accent stripping), the
//! BertPreTokenizer (whitespace and punctuation), greedy longest-match WordPiece with `##`
//! continuations, and `[CLS] ... [SEP]` around each sentence.

use prune_core::{PruneError, Result};
use std::collections::HashMap;
use std::path::Path;
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// A WordPiece tokenizer.
#[derive(Debug, Clone)]
pub struct WordPiece {
    vocab: HashMap<String, u32>,
    unk: u32,
    cls: u32,
    sep: u32,
    pad: u32,
    prefix: String,
    max_word_chars: usize,
    lowercase: bool,
    strip_accents: bool,
}

/// A padded batch of token ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// `[rows, seq]` row-major token ids.
    pub ids: Vec<i64>,
    /// `[rows, seq]` 1.0 for tokens, 0.0 for padding.
    pub mask: Vec<f32>,
    /// Sentences.
    pub rows: usize,
    /// Tokens per row (the longest sentence, capped).
    pub seq: usize,
}

fn problem(path: &Path, what: impl std::fmt::Display) -> PruneError {
    PruneError::Backend {
        backend: "tokenizer".into(),
        message: format!("{}: {what}", path.display()),
    }
}

impl WordPiece {
    /// Reads a `tokenizer.json` whose model is WordPiece.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = crate::read_text(path)?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| problem(path, format!("not JSON: {e}")))?;
        let model = &json["model"];
        if model["type"].as_str() != Some("WordPiece") {
            return Err(problem(
                path,
                format!("model.type is {}, expected \"WordPiece\"", model["type"]),
            ));
        }
        let vocab: HashMap<String, u32> = model["vocab"]
            .as_object()
            .ok_or_else(|| problem(path, "model.vocab is not a map of token -> id"))?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as u32)))
            .collect();
        let id = |token: &str| {
            vocab
                .get(token)
                .copied()
                .ok_or_else(|| problem(path, format!("vocabulary has no {token}")))
        };
        let unk_token = model["unk_token"].as_str().unwrap_or("[UNK]");
        let normalizer = &json["normalizer"];
        let lowercase = normalizer["lowercase"].as_bool().unwrap_or(true);
        Ok(WordPiece {
            unk: id(unk_token)?,
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            pad: id("[PAD]")?,
            prefix: model["continuing_subword_prefix"]
                .as_str()
                .unwrap_or("##")
                .to_string(),
            max_word_chars: model["max_input_chars_per_word"].as_u64().unwrap_or(100) as usize,
            // `strip_accents: null` follows `lowercase`, as in the BERT tokenizer.
            strip_accents: normalizer["strip_accents"].as_bool().unwrap_or(lowercase),
            lowercase,
            vocab,
        })
    }

    /// Vocabulary size.
    pub fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    /// The normalised text split into words and punctuation.
    fn pre_tokenize(&self, text: &str) -> Vec<String> {
        let mut cleaned = String::with_capacity(text.len());
        for c in text.chars() {
            if c == '\0' || c == '\u{fffd}' || (c.is_control() && !c.is_whitespace()) {
                continue;
            }
            if is_cjk(c) {
                cleaned.push(' ');
                cleaned.push(c);
                cleaned.push(' ');
            } else if c.is_whitespace() {
                cleaned.push(' ');
            } else {
                cleaned.push(c);
            }
        }
        let mut normal = if self.lowercase {
            cleaned.to_lowercase()
        } else {
            cleaned
        };
        if self.strip_accents {
            normal = normal.nfd().filter(|c| !is_combining_mark(*c)).collect();
        }
        let mut words = Vec::new();
        let mut current = String::new();
        for c in normal.chars() {
            if c.is_whitespace() {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            } else if is_punctuation(c) {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                words.push(c.to_string());
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        words
    }

    /// Greedy longest-match-first pieces of one word; `[UNK]` if any part has no piece.
    fn word_pieces(&self, word: &str, out: &mut Vec<u32>) {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() > self.max_word_chars {
            out.push(self.unk);
            return;
        }
        let mark = out.len();
        let mut start = 0;
        let mut piece = String::new();
        while start < chars.len() {
            let mut end = chars.len();
            let mut found = None;
            while start < end {
                piece.clear();
                if start > 0 {
                    piece.push_str(&self.prefix);
                }
                piece.extend(&chars[start..end]);
                if let Some(&id) = self.vocab.get(&piece) {
                    found = Some(id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) => {
                    out.push(id);
                    start = end;
                }
                None => {
                    out.truncate(mark);
                    out.push(self.unk);
                    return;
                }
            }
        }
    }

    /// Token ids of one sentence: `[CLS] pieces [SEP]`, at most `max_len` (pieces are cut).
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        let mut ids = vec![self.cls];
        for w in self.pre_tokenize(text) {
            self.word_pieces(&w, &mut ids);
        }
        ids.truncate(max_len.max(2) - 1);
        ids.push(self.sep);
        ids
    }

    /// A padded batch: every sentence encoded with [`encode`](Self::encode), padded with
    /// `[PAD]` to the longest.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S], max_len: usize) -> Encoded {
        let encoded: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| self.encode(t.as_ref(), max_len))
            .collect();
        let seq = encoded.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(encoded.len() * seq);
        let mut mask = Vec::with_capacity(encoded.len() * seq);
        for e in &encoded {
            ids.extend(e.iter().map(|&i| i64::from(i)));
            mask.extend(std::iter::repeat_n(1.0f32, e.len()));
            ids.extend(std::iter::repeat_n(i64::from(self.pad), seq - e.len()));
            mask.extend(std::iter::repeat_n(0.0f32, seq - e.len()));
        }
        Encoded {
            ids,
            mask,
            rows: encoded.len(),
            seq,
        }
    }
}

/// CJK ideographs, which BERT splits into single-character words.
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

/// BERT's punctuation: every non-alphanumeric printable ASCII character, and the Unicode
/// punctuation blocks (General Punctuation, CJK symbols, full-width forms, Latin-1 marks).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32,
            0x00A1..=0x00BF | 0x2010..=0x2027 | 0x2030..=0x205E | 0x3001..=0x3003
            | 0x3008..=0x3011 | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> WordPiece {
        let tokens = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "un", "##aff", "##able", ",", "cafe", "!",
        ];
        WordPiece {
            vocab: tokens
                .iter()
                .enumerate()
                .map(|(i, t)| (t.to_string(), i as u32))
                .collect(),
            unk: 1,
            cls: 2,
            sep: 3,
            pad: 0,
            prefix: "##".into(),
            max_word_chars: 100,
            lowercase: true,
            strip_accents: true,
        }
    }

    #[test]
    fn words_split_into_longest_pieces() {
        let t = tiny();
        assert_eq!(
            t.encode("The unaffable, Café!", 64),
            vec![2, 4, 5, 6, 7, 8, 9, 10, 3]
        );
        assert_eq!(t.encode("unknownword", 64), vec![2, 1, 3]);
        assert_eq!(t.encode("the the the", 3), vec![2, 4, 3]);
    }

    #[test]
    fn batches_are_padded_to_the_longest() {
        let e = tiny().encode_batch(&["the", "the the"], 64);
        assert_eq!((e.rows, e.seq), (2, 4));
        assert_eq!(e.ids, vec![2, 4, 3, 0, 2, 4, 4, 3]);
        assert_eq!(e.mask, vec![1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    }
}
