//! Exact, deterministic mask selection on the host: k smallest with ties broken by index, and
//! the patterns built on it (tiles, N:M, per channel).
//!
//! [`stored`] is the entry point: it selects over a weight's stored values ([`keys`] makes
//! integer keys of their scores; [`groups`] holds the N:M, per-channel and tile passes, split
//! over the cores by [`parallel`]). [`masks`] is the same selection over a canonical copy,
//! for layouts the stored passes do not map.

pub mod bits;
pub mod conform;
mod groups;
pub mod keys;
pub mod masks;
pub mod parallel;
pub mod stored;
