//! Transformer models for pruning: what is framework-free about them.
//!
//! - [`bert`]: BERT-family encoders' config, the one checkpoint schema both encoders load (bare
//!   or a Hugging Face task model with pooler and classification head), and model directories.
//! - [`hf_config`]: a Hugging Face `config.json` brought to a shrunk checkpoint's sizes.
//! - [`tokenizer`]: BERT WordPiece tokenisation configured by a Hugging Face `tokenizer.json`.
//! - [`corpus`]: sentences of English prose with a held-out split and neighbour pairs.

#![warn(missing_docs)]

pub mod bert;
pub mod corpus;
pub mod hf_config;
pub mod tokenizer;

pub use bert::{BertCheckpoint, BertConfig, BertSchema};
pub use corpus::{Corpus, Sentence};
pub use tokenizer::{Encoded, WordPiece};

/// A text file's contents, or an I/O error naming the file.
pub(crate) fn read_text(path: &std::path::Path) -> prune_core::Result<String> {
    std::fs::read_to_string(path).map_err(|source| prune_core::PruneError::Io {
        path: path.display().to_string(),
        source,
    })
}
