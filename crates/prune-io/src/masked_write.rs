//! Writing a pruned checkpoint: every tensor keeps its dtype and bytes, except that masked
//! elements become zero and shrunk tensors keep only their kept slices. Tensors are produced
//! one at a time from the source's memory map while the file is written, through a temporary
//! file in the destination folder that is renamed over the output once complete. A file that
//! is only masked keeps the source's header byte for byte and streams through a fixed-size
//! chunk; one with shrunk tensors gets a new header and each tensor's bytes in turn.

use crate::checkpoint::{bad, not_float, Checkpoint, TensorEntry};
use crate::shrink_plan::{gather, ShrinkPlan};
use prune_core::select::bits::PackedMask;
use prune_core::{PruneError, Result};
use safetensors::tensor::View;
use safetensors::Dtype;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// One tensor as written: the source bytes, a copy with the masked elements zeroed, or the
/// kept slices of a shrunk tensor.
struct Pruned<'s, 'w> {
    source: &'s Checkpoint,
    entry: &'s TensorEntry,
    keep: Option<&'w PackedMask>,
    shrinks: &'w ShrinkPlan,
    shape: Vec<usize>,
    written: &'w dyn Fn(&TensorEntry),
    /// The tensor written last, whose pages are released when the next one is produced.
    released: &'w Cell<Option<&'s TensorEntry>>,
}

impl View for Pruned<'_, '_> {
    fn dtype(&self) -> Dtype {
        self.entry.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        if let Some(done) = self.released.replace(Some(self.entry)) {
            self.source.release(done);
        }
        let bytes = self.source.bytes(self.entry);
        let size = self.entry.float().map_or(1, |d| d.size());
        let mut out = match self.keep {
            Some(keep) => Cow::Owned(zero_pruned(bytes, size, keep)),
            None => Cow::Borrowed(bytes),
        };
        let mut shape = self.entry.shape.clone();
        for op in self
            .shrinks
            .ops
            .iter()
            .filter(|op| op.weight == self.entry.name)
        {
            let (kept, next) = gather(&out, size, &shape, op.axis, &op.keep);
            out = Cow::Owned(kept);
            shape = next;
        }
        (self.written)(self.entry);
        out
    }
    fn data_len(&self) -> usize {
        match self.entry.float() {
            Some(dtype) if self.shape != self.entry.shape => {
                self.shape.iter().product::<usize>() * dtype.size()
            }
            _ => self.entry.byte_len(),
        }
    }
}

/// A copy of `bytes` (elements of `size` bytes) with every element whose keep bit is clear
/// set to zero.
fn zero_pruned(bytes: &[u8], size: usize, keep: &PackedMask) -> Vec<u8> {
    let mut out = bytes.to_vec();
    zero_range(&mut out, size, keep, 0);
    out
}

/// Zeroes, in `chunk` (elements of `size` bytes, the first being element `first` of the
/// tensor, a multiple of 64), every element whose keep bit is clear.
fn zero_range(chunk: &mut [u8], size: usize, keep: &PackedMask, first: usize) {
    match size {
        2 => zero_elements::<2>(chunk, keep, first),
        4 => zero_elements::<4>(chunk, keep, first),
        _ => {
            for (j, element) in chunk.chunks_exact_mut(size).enumerate() {
                let i = first + j;
                if keep.words[i / 64] >> (i % 64) & 1 == 0 {
                    element.fill(0);
                }
            }
        }
    }
}

/// Byte masks of four elements of `N` bytes, by the nibble of their keep bits: all ones
/// over a kept element, zero over a pruned one (the low `4 * N` bytes of each entry).
const fn nibble_masks<const N: usize>() -> [u128; 16] {
    let mut out = [0u128; 16];
    let mut v = 0;
    while v < 16 {
        let mut e = 0;
        while e < 4 {
            if v >> e & 1 == 1 {
                let ones = if N == 4 {
                    u32::MAX as u128
                } else {
                    u16::MAX as u128
                };
                out[v] |= ones << (e * N * 8);
            }
            e += 1;
        }
        v += 1;
    }
    out
}

/// [`zero_range`] for elements of `N` (2 or 4) bytes: four elements at a time, masked by one
/// table entry, so the loop has no branch per element.
fn zero_elements<const N: usize>(chunk: &mut [u8], keep: &PackedMask, first: usize) {
    let masks = const { nibble_masks::<N>() };
    for (w, group) in chunk.chunks_mut(64 * N).enumerate() {
        let word = keep.words[first / 64 + w];
        if word == u64::MAX {
            continue;
        }
        if word == 0 {
            group.fill(0);
            continue;
        }
        let q = group.len() / (4 * N);
        let mut quads = group.chunks_exact_mut(4 * N);
        for (q, quad) in quads.by_ref().enumerate() {
            let m = masks[(word >> (4 * q) & 0xf) as usize];
            if N == 4 {
                let v = u128::from_le_bytes(quad.try_into().unwrap_or([0; 16])) & m;
                quad.copy_from_slice(&v.to_le_bytes());
            } else {
                let v = u64::from_le_bytes(quad.try_into().unwrap_or([0; 8])) & m as u64;
                quad.copy_from_slice(&v.to_le_bytes());
            }
        }
        // A last group shorter than 64 elements ends in fewer than four.
        for (j, element) in quads.into_remainder().chunks_exact_mut(N).enumerate() {
            if word >> (4 * q + j) & 1 == 0 {
                element.fill(0);
            }
        }
    }
}

/// Bytes a masked tensor is written in: bounded memory whatever the tensor's size.
const CHUNK_BYTES: usize = 4 << 20;

/// Writes the file as `source` is, byte for byte (header, metadata, order, offsets), with the
/// masked elements zeroed, in bounded memory: a mapped source is copied whole by the kernel
/// (as `cp` does) and its masked tensors rewritten in place; bytes in memory stream out in
/// order, each masked tensor through one reused chunk.
fn write_streamed<'s>(
    file: &std::fs::File,
    source: &'s Checkpoint,
    masks: &BTreeMap<String, PackedMask>,
    written: &dyn Fn(&TensorEntry),
) -> std::io::Result<()> {
    if source.is_mapped() {
        let copied = copy_file(source, file)?;
        return rewrite_masked(file, copied, source, masks, written);
    }
    let mut chunk = Vec::new();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(source.header_bytes())?;
    for entry in in_file_order(source) {
        let bytes = source.bytes(entry);
        match (masks.get(&entry.name), entry.float()) {
            (Some(keep), Some(dtype)) => {
                let (size, per_chunk) = (dtype.size(), chunk_elements(dtype.size()));
                for (c, part) in bytes.chunks(per_chunk * size).enumerate() {
                    chunk.clear();
                    chunk.extend_from_slice(part);
                    zero_range(&mut chunk, size, keep, c * per_chunk);
                    out.write_all(&chunk)?;
                }
            }
            _ => out.write_all(bytes)?,
        }
        written(entry);
    }
    out.flush()
}

fn in_file_order(source: &Checkpoint) -> Vec<&TensorEntry> {
    let mut order: Vec<&TensorEntry> = source.tensors().iter().collect();
    order.sort_by_key(|e| e.offsets.0);
    order
}

/// Copies the source file whole into `file` (the kernel's copy, as `cp` does).
fn copy_file(source: &Checkpoint, file: &std::fs::File) -> std::io::Result<u64> {
    let mut input = std::fs::File::open(source.path())?;
    std::io::copy(&mut input, &mut &*file)
}

/// Zeroes the masked elements of a file that holds a copy of `copied` bytes of the source,
/// chunk by chunk, writing only the chunks that hold a pruned element.
fn rewrite_masked<'s>(
    file: &std::fs::File,
    copied: u64,
    source: &'s Checkpoint,
    masks: &BTreeMap<String, PackedMask>,
    written: &dyn Fn(&TensorEntry),
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    if copied != source.file_len() as u64 {
        return Err(std::io::Error::other(format!(
            "{} changed while being read: {copied} bytes copied of {}",
            source.path().display(),
            source.file_len()
        )));
    }
    let mut chunk = Vec::new();
    for entry in in_file_order(source) {
        if let (Some(keep), Some(dtype)) = (masks.get(&entry.name), entry.float()) {
            let start = source.file_offset(entry);
            let (size, per_chunk) = (dtype.size(), chunk_elements(dtype.size()));
            for (c, part) in source.bytes(entry).chunks(per_chunk * size).enumerate() {
                let first = c * per_chunk;
                let words = &keep.words[first / 64..(first + part.len() / size).div_ceil(64)];
                if words.iter().all(|&w| w == u64::MAX) {
                    continue;
                }
                chunk.clear();
                chunk.extend_from_slice(part);
                zero_range(&mut chunk, size, keep, first);
                file.write_all_at(&chunk, (start + first * size) as u64)?;
            }
        }
        written(entry);
        source.release(entry);
    }
    Ok(())
}

/// A copy of a mapped checkpoint running in the background into a new file beside the
/// output: an output that is only masked starts as the input, byte for byte, so the copy can
/// run while the masks are selected. Dropped unfinished, the file is removed.
pub struct StartedCopy {
    path: std::path::PathBuf,
    temp: tempfile::NamedTempFile,
    copying: std::thread::JoinHandle<std::io::Result<u64>>,
}

/// Starts copying `source` (a mapped file) to a new file beside `path`; `None` for a
/// checkpoint held in memory.
pub fn start_copy(path: &Path, source: &Checkpoint) -> Result<Option<StartedCopy>> {
    if !source.is_mapped() {
        return Ok(None);
    }
    let temp = new_file_beside(path)?;
    let mut out = temp
        .as_file()
        .try_clone()
        .map_err(|e| bad(path, format!("writing: {e}")))?;
    let mut input =
        std::fs::File::open(source.path()).map_err(crate::checkpoint::io(source.path()))?;
    let copying = std::thread::spawn(move || std::io::copy(&mut input, &mut out));
    Ok(Some(StartedCopy {
        path: path.to_path_buf(),
        temp,
        copying,
    }))
}

/// Finishes a [`start_copy`]: waits for the copy, zeroes every masked element in place and
/// renames the file over the output. On error nothing is left at the output.
pub fn finish_masked<'s>(
    copy: StartedCopy,
    source: &'s Checkpoint,
    masks: &BTreeMap<String, PackedMask>,
    written: &dyn Fn(&TensorEntry),
) -> Result<()> {
    check_masks(source, masks)?;
    let StartedCopy {
        path,
        temp,
        copying,
    } = copy;
    let writing = |e: std::io::Error| bad(&path, format!("writing: {e}"));
    let copied = copying
        .join()
        .map_err(|_| bad(&path, "the copy stopped"))?
        .map_err(writing)?;
    rewrite_masked(temp.as_file(), copied, source, masks, written).map_err(writing)?;
    persist(temp, &path)
}

/// Elements of `size` bytes a chunk holds: about [`CHUNK_BYTES`], whole mask words.
fn chunk_elements(size: usize) -> usize {
    (CHUNK_BYTES / size / 64).max(1) * 64
}

/// Runs `write` on a new file beside `path` and renames it over `path` once `write` has
/// succeeded; on failure the file is removed and `path` is untouched.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let temp = new_file_beside(path)?;
    write(temp.as_file()).map_err(|e| bad(path, format!("writing: {e}")))?;
    persist(temp, path)
}

/// Every mask names a float tensor of the source and has one bit per element.
fn check_masks(source: &Checkpoint, masks: &BTreeMap<String, PackedMask>) -> Result<()> {
    for (name, mask) in masks {
        let entry = source
            .tensor(name)
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: name.clone(),
                candidates: vec![],
            })?;
        if entry.float().is_none() {
            return Err(not_float(entry));
        }
        if mask.len != entry.numel() || mask.words.len() != mask.len.div_ceil(64) {
            return Err(PruneError::Shape {
                weight: name.clone(),
                shape: entry.shape.clone(),
                reason: format!("a mask of {} bits for {} elements", mask.len, entry.numel()),
            });
        }
    }
    Ok(())
}

/// A new, uniquely named file in `path`'s folder, removed when dropped.
fn new_file_beside(path: &Path) -> Result<tempfile::NamedTempFile> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    tempfile::NamedTempFile::new_in(folder).map_err(|e| {
        bad(
            path,
            format!("cannot create a file in {}: {e}", folder.display()),
        )
    })
}

/// Renames a complete file over `path`.
fn persist(temp: tempfile::NamedTempFile, path: &Path) -> Result<()> {
    temp.persist(path).map(drop).map_err(|e| {
        bad(
            path,
            format!("renaming the written file into place: {}", e.error),
        )
    })
}

/// Writes `source` to `path` with `masks` (keep bits by tensor name, row-major) applied and
/// the header metadata kept. `written` is called after each tensor's bytes are produced. On
/// error nothing is left at `path` (an existing file there is untouched).
pub fn write_masked<'s>(
    path: &Path,
    source: &'s Checkpoint,
    masks: &BTreeMap<String, PackedMask>,
    written: &dyn Fn(&TensorEntry),
) -> Result<()> {
    write_pruned(path, source, masks, &ShrinkPlan::default(), written)
}

/// As [`write_masked`], and every tensor `shrinks` names keeps only its kept slices (a
/// tensor is masked or shrunk, not both).
pub fn write_pruned<'s>(
    path: &Path,
    source: &'s Checkpoint,
    masks: &BTreeMap<String, PackedMask>,
    shrinks: &ShrinkPlan,
    written: &dyn Fn(&TensorEntry),
) -> Result<()> {
    check_masks(source, masks)?;
    let names: Vec<String> = masks.keys().cloned().collect();
    crate::shrink_plan::check_disjoint(shrinks, &names)?;
    for op in &shrinks.ops {
        let entry = source
            .tensor(&op.weight)
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: op.weight.clone(),
                candidates: vec![],
            })?;
        let extent = entry.shape.get(op.axis).copied().unwrap_or(0);
        if entry.float().is_none() {
            return Err(not_float(entry));
        }
        if let Some(bad) = op.keep.iter().find(|&&k| k >= extent) {
            return Err(PruneError::Shape {
                weight: op.weight.clone(),
                shape: entry.shape.clone(),
                reason: format!("kept index {bad} along axis {} of {extent}", op.axis),
            });
        }
    }
    if shrinks.ops.is_empty() {
        return write_atomically(path, |out| write_streamed(out, source, masks, written));
    }
    let released = Cell::new(None);
    let views = source.tensors().iter().map(|entry| {
        (
            entry.name.as_str(),
            Pruned {
                source,
                entry,
                keep: masks.get(&entry.name),
                shrinks,
                shape: shrinks
                    .new_shape(&entry.name, &entry.shape)
                    .unwrap_or_else(|| entry.shape.clone()),
                written,
                released: &released,
            },
        )
    });
    safetensors::serialize_to_file(views, source.metadata().cloned(), path)
        .map_err(|e| bad(path, format!("writing: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cleared_bits_are_zeroed() {
        // 134 elements: two whole mask words, one all kept, and a short last one.
        let n = 134;
        let keep: Vec<bool> = (0..n)
            .map(|i| (64..128).contains(&i) || i % 3 != 0)
            .collect();
        for size in [1, 2, 3, 4] {
            let bytes: Vec<u8> = (0..n * size).map(|b| (b % 251 + 1) as u8).collect();
            let out = zero_pruned(&bytes, size, &PackedMask::pack(&keep));
            for i in 0..n {
                let element = &out[size * i..size * (i + 1)];
                if keep[i] {
                    assert_eq!(
                        element,
                        &bytes[size * i..size * (i + 1)],
                        "size {size}, element {i}"
                    );
                } else {
                    assert!(element.iter().all(|&b| b == 0), "size {size}, element {i}");
                }
            }
        }
    }
}
