//! Reading and writing `.safetensors` files (f32 tensors), the format Hugging Face models ship in.
//!
//! Layout: an 8-byte little-endian header length, a JSON header mapping each name to
//! `{dtype, shape, data_offsets: [begin, end]}` (offsets into the data that follows), then the
//! raw little-endian data.

use crate::error::{PruneError, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// A named host tensor: row-major shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Row-major shape.
    pub shape: Vec<usize>,
    /// Values.
    pub data: Vec<f32>,
}

/// Tensors by name.
pub type TensorMap = BTreeMap<String, HostTensor>;

fn bad(path: &Path, reason: impl std::fmt::Display) -> PruneError {
    PruneError::Backend {
        backend: "safetensors".into(),
        message: format!("{}: {reason}", path.display()),
    }
}

/// Reads every F32 tensor of a safetensors file (other dtypes, such as the I64 `position_ids`
/// of BERT checkpoints, are skipped and listed in the second value).
pub fn read_f32(path: impl AsRef<Path>) -> Result<(TensorMap, Vec<String>)> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| PruneError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if bytes.len() < 8 {
        return Err(bad(path, "shorter than the 8-byte header length"));
    }
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header_end = 8usize
        .checked_add(n)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad(path, format!("header length {n} runs past the file end")))?;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..header_end])
        .map_err(|e| bad(path, format!("header is not JSON: {e}")))?;
    let entries = header
        .as_object()
        .ok_or_else(|| bad(path, "header is not a JSON object"))?;
    let data = &bytes[header_end..];
    let mut out = TensorMap::new();
    let mut skipped = Vec::new();
    for (name, entry) in entries {
        if name == "__metadata__" {
            continue;
        }
        let dtype = entry["dtype"].as_str().unwrap_or("");
        if dtype != "F32" {
            skipped.push(name.clone());
            continue;
        }
        let shape: Vec<usize> = entry["shape"]
            .as_array()
            .ok_or_else(|| bad(path, format!("`{name}`: no shape")))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| bad(path, format!("`{name}`: shape is not a list of sizes")))?;
        let offsets = entry["data_offsets"]
            .as_array()
            .and_then(|o| Some((o.first()?.as_u64()? as usize, o.get(1)?.as_u64()? as usize)))
            .ok_or_else(|| bad(path, format!("`{name}`: no data_offsets")))?;
        let (begin, end) = offsets;
        let numel: usize = shape.iter().product();
        if end < begin || end > data.len() || end - begin != numel * 4 {
            return Err(bad(
                path,
                format!("`{name}`: offsets {begin}..{end} do not hold {numel} f32 values"),
            ));
        }
        let values = data[begin..end]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        out.insert(
            name.clone(),
            HostTensor {
                shape,
                data: values,
            },
        );
    }
    Ok((out, skipped))
}

/// Writes tensors as an F32 safetensors file (through a temporary file, then renamed), with
/// optional string metadata.
pub fn write_f32(
    path: impl AsRef<Path>,
    tensors: &TensorMap,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        header.insert(
            "__metadata__".into(),
            serde_json::to_value(metadata).expect("strings"),
        );
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        let len = t.data.len() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut text = serde_json::to_vec(&header).expect("JSON");
    while !text.len().is_multiple_of(8) {
        text.push(b' ');
    }
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&text);
    for t in tensors.values() {
        for v in &t.data {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    let io = |source| PruneError::Io {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Every weight of a model in the canonical layout (PyTorch's `[out, in]`), by canonical name:
/// what [`write_f32`] saves. A structurally pruned model exports its new shapes, and loads back
/// on any backend whose model reads its sizes from its weights.
pub fn from_model<M: crate::Model>(model: &M) -> Result<TensorMap> {
    use crate::TensorBackend;
    let be = model.backend();
    let mut out = TensorMap::new();
    for info in model.weights()? {
        let stored = be.to_vec(&model.weight(&info.name)?)?;
        out.insert(
            info.name.clone(),
            HostTensor {
                data: crate::host::to_canonical(stored, info.layout, &info.shape),
                shape: info.shape,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_read_back_identically() {
        let dir = std::env::temp_dir().join(format!("prune-st-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.safetensors");
        let mut m = TensorMap::new();
        m.insert(
            "a.weight".into(),
            HostTensor {
                shape: vec![2, 3],
                data: vec![1.0, -2.0, 3.5, 0.0, 5.0, 6.25],
            },
        );
        m.insert(
            "a.bias".into(),
            HostTensor {
                shape: vec![2],
                data: vec![0.5, -0.5],
            },
        );
        let meta = BTreeMap::from([("heads".to_string(), "8".to_string())]);
        write_f32(&path, &m, &meta).unwrap();
        let (back, skipped) = read_f32(&path).unwrap();
        assert_eq!(back, m);
        assert!(skipped.is_empty());
        std::fs::write(&path, [1u8, 0, 0, 0, 0, 0, 0, 0, b'x']).unwrap();
        let err = read_f32(&path).unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
