//! Transformer models for pruning: what is framework-free about them.
//!
//! - [`bert`]: BERT-style encoders' config and the one checkpoint schema both encoders load.
//! - [`tokenizer`]: BERT WordPiece tokenisation configured by a Hugging Face `tokenizer.json`.
//! - [`corpus`]: sentences of English prose with a held-out split and neighbour pairs.

#![warn(missing_docs)]

pub mod bert;
pub mod corpus;
pub mod tokenizer;

pub use bert::BertConfig;
pub use corpus::{Corpus, Sentence};
pub use tokenizer::{Encoded, WordPiece};

/// A text file's contents, or an I/O error naming the file.
pub(crate) fn read_text(path: &std::path::Path) -> prune_core::Result<String> {
    std::fs::read_to_string(path).map_err(|source| prune_core::PruneError::Io {
        path: path.display().to_string(),
        source,
    })
}
