//! A safetensors checkpoint opened for streaming: the header is validated once, and each
//! tensor is read from the memory map on its own, in its stored dtype, then released.

use prune_core::{PruneError, Result};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The float dtypes prune reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatDtype {
    /// IEEE single precision.
    F32,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
}

impl FloatDtype {
    /// The float dtype of a safetensors dtype, if it is one of the three.
    pub fn of(dtype: Dtype) -> Option<Self> {
        match dtype {
            Dtype::F32 => Some(FloatDtype::F32),
            Dtype::F16 => Some(FloatDtype::F16),
            Dtype::BF16 => Some(FloatDtype::BF16),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            FloatDtype::F32 => 4,
            FloatDtype::F16 | FloatDtype::BF16 => 2,
        }
    }

    /// Little-endian values of this dtype as f32 (exact: every f16 and bf16 value is an f32).
    pub fn to_f32(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            FloatDtype::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            FloatDtype::F16 => bytes
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            FloatDtype::BF16 => bytes
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        }
    }

    /// Whether the element starting at `bytes[0]` is zero (either sign).
    #[inline]
    pub fn is_zero(self, bytes: &[u8]) -> bool {
        match self {
            FloatDtype::F32 => {
                u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]).trailing_zeros() >= 31
            }
            FloatDtype::F16 | FloatDtype::BF16 => {
                u16::from_le_bytes([bytes[0], bytes[1]]).trailing_zeros() >= 15
            }
        }
    }

    /// The name safetensors headers use (`F32`, `F16`, `BF16`).
    pub fn as_str(self) -> &'static str {
        match self {
            FloatDtype::F32 => "F32",
            FloatDtype::F16 => "F16",
            FloatDtype::BF16 => "BF16",
        }
    }
}

/// One tensor of a checkpoint, as its header describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorEntry {
    /// Name as stored.
    pub name: String,
    /// Stored dtype.
    pub dtype: Dtype,
    /// Row-major shape (PyTorch's `[out, in, ...]` for Hugging Face checkpoints).
    pub shape: Vec<usize>,
    /// Byte range within the data section.
    pub(crate) offsets: (usize, usize),
}

impl TensorEntry {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Bytes of data.
    pub fn byte_len(&self) -> usize {
        self.offsets.1 - self.offsets.0
    }

    /// The float dtype, if it is one.
    pub fn float(&self) -> Option<FloatDtype> {
        FloatDtype::of(self.dtype)
    }
}

enum Buffer {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Buffer {
    fn bytes(&self) -> &[u8] {
        match self {
            Buffer::Mapped(m) => m,
            Buffer::Owned(v) => v,
        }
    }
}

/// A validated safetensors file, memory-mapped.
pub struct Checkpoint {
    path: PathBuf,
    buffer: Buffer,
    /// Where the data section starts in the file.
    data_start: usize,
    entries: Vec<TensorEntry>,
    metadata: Option<HashMap<String, String>>,
}

pub(crate) fn bad(path: &Path, reason: impl std::fmt::Display) -> PruneError {
    PruneError::Backend {
        backend: "safetensors".into(),
        message: format!("{}: {reason}", path.display()),
    }
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> PruneError + '_ {
    move |source| PruneError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Checkpoint {
    /// Maps and validates a file: header size, JSON, dtypes, and offsets that tile the data
    /// exactly (the `safetensors` crate's checks). Nothing but the header is read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(io(path))?;
        // SAFETY: the map is read-only. A file changed by another process while it is open
        // gives wrong values, never unsafety here: every read is bounds-checked against the
        // map's length, which is fixed at map time.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(path))?;
        Self::from_buffer(path, Buffer::Mapped(map))
    }

    /// A checkpoint over bytes in memory (`name` is used in messages).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self> {
        Self::from_buffer(Path::new(name), Buffer::Owned(bytes))
    }

    fn from_buffer(path: &Path, buffer: Buffer) -> Result<Self> {
        let bytes = buffer.bytes();
        let not_safetensors = |e| bad(path, format!("not a valid safetensors file: {e}"));
        SafeTensors::deserialize(bytes).map_err(not_safetensors)?;
        let (header_len, metadata) = SafeTensors::read_metadata(bytes).map_err(not_safetensors)?;
        let entries = entries(&metadata);
        Ok(Checkpoint {
            path: path.to_path_buf(),
            data_start: 8 + header_len,
            entries,
            metadata: metadata.metadata().clone(),
            buffer,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor, in the order of the data.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.entries
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The `__metadata__` strings of the header.
    pub fn metadata(&self) -> Option<&HashMap<String, String>> {
        self.metadata.as_ref()
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> usize {
        self.buffer.bytes().len()
    }

    /// Whether the checkpoint is a mapped file (not bytes in memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.buffer, Buffer::Mapped(_))
    }

    /// Where a tensor's bytes start in the file.
    pub fn file_offset(&self, entry: &TensorEntry) -> usize {
        self.data_start + entry.offsets.0
    }

    /// The file's first bytes up to the data: the header size and the header itself.
    pub fn header_bytes(&self) -> &[u8] {
        &self.buffer.bytes()[..self.data_start]
    }

    /// A tensor's stored bytes, read from the map.
    pub fn bytes(&self, entry: &TensorEntry) -> &[u8] {
        let (s, e) = entry.offsets;
        &self.buffer.bytes()[self.data_start + s..self.data_start + e]
    }

    /// A float tensor's values as f32; an error naming the tensor and its dtype otherwise.
    pub fn values(&self, entry: &TensorEntry) -> Result<Vec<f32>> {
        let dtype = entry.float().ok_or_else(|| not_float(entry))?;
        Ok(dtype.to_f32(self.bytes(entry)))
    }

    /// Drops a tensor's pages from this process's memory once it has been processed, so a
    /// pass over a file larger than memory keeps only the tensor at hand resident.
    pub fn release(&self, entry: &TensorEntry) {
        if let Buffer::Mapped(map) = &self.buffer {
            let (s, e) = entry.offsets;
            // SAFETY: the map is a read-only shared file mapping: dropped pages are read from
            // the file again on the next access, with the same contents.
            unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.data_start + s,
                    e - s,
                )
            }
            .ok();
        }
    }
}

/// The error for a float-only operation on another dtype.
pub fn not_float(entry: &TensorEntry) -> PruneError {
    PruneError::Shape {
        weight: entry.name.clone(),
        shape: entry.shape.clone(),
        reason: format!("dtype {:?} is not a float (F32, F16 or BF16)", entry.dtype),
    }
}

fn entries(metadata: &Metadata) -> Vec<TensorEntry> {
    let infos = metadata.tensors();
    metadata
        .offset_keys()
        .into_iter()
        .map(|name| {
            let info: &TensorInfo = infos[&name];
            TensorEntry {
                dtype: info.dtype,
                shape: info.shape.clone(),
                offsets: info.data_offsets,
                name,
            }
        })
        .collect()
}
