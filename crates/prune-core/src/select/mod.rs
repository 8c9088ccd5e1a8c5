//! Exact, deterministic mask selection on the host: k smallest with ties broken by index, and
//! the patterns built on it (tiles, N:M, per channel).

pub mod bits;
pub mod conform;
pub mod masks;
pub mod stored;
