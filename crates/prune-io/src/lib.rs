//! Checkpoint files: safetensors, the format Hugging Face models ship in. Files are read
//! memory-mapped (a tensor read never copies the whole file) and written through a temporary
//! file in the destination folder, then renamed, so a failed write leaves no partial output.
//! [`oneshot`] prunes a checkpoint from a config with no framework, one tensor at a time;
//! [`shrink_plan`] shrinks it by data-free structured criteria.

#![warn(missing_docs)]

mod checkpoint;
mod masked_write;
pub mod oneshot;
mod safetensors_file;
pub mod shrink_plan;

pub use checkpoint::{not_float, Checkpoint, FloatDtype, TensorEntry};
pub use masked_write::{finish_masked, start_copy, write_masked, write_pruned, StartedCopy};
pub use safetensors_file::{from_model, into_model, read_f32, write_f32, HostTensor, TensorMap};
