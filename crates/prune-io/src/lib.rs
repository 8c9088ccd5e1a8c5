//! Checkpoint files: safetensors, the format Hugging Face models ship in. Files are read
//! memory-mapped (a tensor read never copies the whole file) and written through a temporary
//! file in the destination folder, then renamed, so a failed write leaves no partial output.

#![warn(missing_docs)]

mod safetensors_file;

pub use safetensors_file::{from_model, read_f32, write_f32, HostTensor, TensorMap};
