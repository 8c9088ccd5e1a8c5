//! Text tools for pruning transformer models.
//!
//! - [`tokenizer`]: BERT WordPiece tokenisation configured by a Hugging Face `tokenizer.json`.
//! - [`corpus`]: sentences of English prose with a held-out split and neighbour pairs.

#![warn(missing_docs)]

pub mod corpus;
pub mod tokenizer;

pub use corpus::{Corpus, Sentence};
pub use tokenizer::{Encoded, WordPiece};
