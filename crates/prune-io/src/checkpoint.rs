//! A safetensors checkpoint opened for streaming: the header is validated once, and each
//! tensor is read from the memory map on its own, in its stored dtype, then released.

use prune_core::select::bits::PackedMask;
use prune_core::select::parallel;
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

    /// Bit `i` set where element `i` of `bytes` (elements of this dtype, little-endian) is
    /// not zero (either sign), a word of 64 elements at a time, split over the cores.
    pub fn nonzero_bits(self, bytes: &[u8]) -> PackedMask {
        let size = self.size();
        let n = bytes.len() / size;
        let mut words = vec![0u64; n.div_ceil(64)];
        let ranges = parallel::split(words.len(), parallel::parts(n), 1);
        let mut items = Vec::with_capacity(ranges.len());
        let mut rest = words.as_mut_slice();
        for r in ranges {
            let (mine, tail) = rest.split_at_mut(r.len());
            items.push((r.start, mine));
            rest = tail;
        }
        parallel::each(items, |(first, out)| {
            let part = &bytes[(first * 64 * size).min(bytes.len())..];
            for (word, group) in out.iter_mut().zip(part.chunks(64 * size)) {
                *word = match self {
                    FloatDtype::F32 => nonzero_word_32(group),
                    FloatDtype::F16 | FloatDtype::BF16 => nonzero_word_16(group),
                };
            }
        });
        PackedMask { len: n, words }
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

/// The non-zero bits of up to 64 16-bit floats (little-endian): any bit set but the sign.
/// Four values a step, as the lanes of one u64.
#[inline]
fn nonzero_word_16(group: &[u8]) -> u64 {
    const MAGNITUDE: u64 = 0x7fff_7fff_7fff_7fff;
    // Moves the lane flags at bits 0, 16, 32 and 48 to bits 48..52 (the other products land
    // on distinct bits below 48).
    const GATHER: u64 = (1 << 48) | (1 << 33) | (1 << 18) | (1 << 3);
    let mut word = 0u64;
    let mut quads = group.chunks_exact(8);
    for (q, b) in quads.by_ref().enumerate() {
        let m = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) & MAGNITUDE;
        // A lane's top bit is set exactly when its magnitude is not zero (no carry across).
        let top = ((m + MAGNITUDE) | m) & !MAGNITUDE;
        let flags = ((top >> 15).wrapping_mul(GATHER) >> 48) & 0xf;
        word |= flags << (4 * q);
    }
    let done = group.len() / 8 * 4;
    for (j, e) in quads.remainder().chunks_exact(2).enumerate() {
        word |= u64::from(u16::from_le_bytes([e[0], e[1]]) & 0x7fff != 0) << (done + j);
    }
    word
}

/// The non-zero bits of up to 64 f32 values (little-endian): any bit set but the sign.
#[inline]
fn nonzero_word_32(group: &[u8]) -> u64 {
    let mut word = 0u64;
    for (j, e) in group.chunks_exact(4).enumerate() {
        let v = u32::from_le_bytes([e[0], e[1], e[2], e[3]]);
        word |= u64::from(v & 0x7fff_ffff != 0) << j;
    }
    word
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The word-at-a-time flags against a test of each value, for every dtype, with both
    /// zeros, subnormals and a short last word.
    #[test]
    fn nonzero_bits_flag_exactly_the_non_zero_values() {
        let values: Vec<f32> = (0..203)
            .map(|i| match i % 7 {
                0 => 0.0,
                1 => -0.0,
                2 => 1e-7,
                3 => -3.5,
                4 => 6e-8,
                _ => (i as f32) * 0.25 - 20.0,
            })
            .collect();
        for dtype in [FloatDtype::F32, FloatDtype::F16, FloatDtype::BF16] {
            let bytes: Vec<u8> = match dtype {
                FloatDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                FloatDtype::F16 => values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
                FloatDtype::BF16 => values
                    .iter()
                    .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                    .collect(),
            };
            let decoded = dtype.to_f32(&bytes);
            let want: Vec<bool> = decoded.iter().map(|v| *v != 0.0).collect();
            let got = dtype.nonzero_bits(&bytes);
            assert_eq!(got, PackedMask::pack(&want), "{dtype:?}");
        }
    }
}
