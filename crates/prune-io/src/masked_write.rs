//! Writing a pruned checkpoint: every tensor keeps its dtype and bytes, except that masked
//! elements become zero and shrunk tensors keep only their kept slices. Tensors are produced
//! one at a time from the source's memory map while the file is written, through a temporary
//! file in the destination folder that is renamed over the output once complete.

use crate::checkpoint::{bad, not_float, Checkpoint, TensorEntry};
use crate::shrink_plan::{gather, ShrinkPlan};
use prune_core::select::bits::PackedMask;
use prune_core::{PruneError, Result};
use safetensors::tensor::View;
use safetensors::Dtype;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// One tensor as written: the source bytes, a copy with the masked elements zeroed, or the
/// kept slices of a shrunk tensor.
struct Pruned<'s, 'w> {
    source: &'s Checkpoint,
    entry: &'s TensorEntry,
    keep: Option<&'w PackedMask>,
    shrinks: &'w ShrinkPlan,
    shape: Vec<usize>,
    written: &'w dyn Fn(&'s TensorEntry),
}

impl View for Pruned<'_, '_> {
    fn dtype(&self) -> Dtype {
        self.entry.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
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
    for (w, &word) in keep.words.iter().enumerate() {
        if word == u64::MAX {
            continue;
        }
        let mut pruned = !word;
        while pruned != 0 {
            let i = w * 64 + pruned.trailing_zeros() as usize;
            if i >= keep.len {
                break;
            }
            out[i * size..(i + 1) * size].fill(0);
            pruned &= pruned - 1;
        }
    }
    out
}

/// Writes `source` to `path` with `masks` (keep bits by tensor name, row-major) applied and
/// the header metadata kept. `written` is called after each tensor's bytes are produced. On
/// error nothing is left at `path` (an existing file there is untouched).
pub fn write_masked<'s>(
    path: &Path,
    source: &'s Checkpoint,
    masks: &BTreeMap<String, PackedMask>,
    written: &dyn Fn(&'s TensorEntry),
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
    written: &dyn Fn(&'s TensorEntry),
) -> Result<()> {
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
        let bytes: Vec<u8> = (1..=140u8).collect(); // 70 two-byte elements
        let keep: Vec<bool> = (0..70).map(|i| i % 3 != 0).collect();
        let out = zero_pruned(&bytes, 2, &PackedMask::pack(&keep));
        for i in 0..70 {
            let want = if keep[i] {
                &bytes[2 * i..2 * i + 2]
            } else {
                &[0, 0][..]
            };
            assert_eq!(&out[2 * i..2 * i + 2], want, "element {i}");
        }
    }
}
