//! Reading and writing safetensors files as f32 host tensors.

use crate::checkpoint::{bad, io, Checkpoint};
use prune_core::model::layout::{to_canonical, to_stored};
use prune_core::WeightId;
use prune_core::{Model, PruneError, Result, TensorBackend};
use safetensors::Dtype;
use std::collections::{BTreeMap, HashMap};
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

/// Reads every float tensor (F32, F16, BF16) of a safetensors file as f32; tensors of other
/// dtypes, such as the I64 `position_ids` of BERT checkpoints, are skipped and listed in the
/// second value.
pub fn read_f32(path: impl AsRef<Path>) -> Result<(TensorMap, Vec<String>)> {
    let checkpoint = Checkpoint::open(path)?;
    let mut out = TensorMap::new();
    let mut skipped = Vec::new();
    for entry in checkpoint.tensors() {
        match entry.float() {
            Some(dtype) => {
                out.insert(
                    entry.name.clone(),
                    HostTensor {
                        shape: entry.shape.clone(),
                        data: dtype.to_f32(checkpoint.bytes(entry)),
                    },
                );
            }
            None => skipped.push(entry.name.clone()),
        }
    }
    skipped.sort();
    Ok((out, skipped))
}

/// Writes tensors as an F32 safetensors file with optional string metadata, through a
/// temporary file beside `path` that is renamed over it once complete.
pub fn write_f32(
    path: impl AsRef<Path>,
    tensors: &TensorMap,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let mut bytes: Vec<(&str, Vec<u8>, &[usize])> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if t.data.len() != t.shape.iter().product::<usize>() {
            return Err(PruneError::Shape {
                weight: name.clone(),
                shape: t.shape.clone(),
                reason: format!("{} values for this shape", t.data.len()),
            });
        }
        bytes.push((
            name,
            t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            &t.shape,
        ));
    }
    let mut views = Vec::with_capacity(bytes.len());
    for (name, data, shape) in &bytes {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.to_vec(), data)
            .map_err(|e| bad(path, format!("`{name}`: {e}")))?;
        views.push((*name, view));
    }
    let info: Option<HashMap<String, String>> =
        (!metadata.is_empty()).then(|| metadata.clone().into_iter().collect());
    let file_name = path
        .file_name()
        .ok_or_else(|| bad(path, "not a file path"))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{file_name}.partial"));
    if let Err(e) = safetensors::serialize_to_file(views, info, &tmp) {
        std::fs::remove_file(&tmp).ok();
        return Err(bad(path, format!("writing: {e}")));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        io(path)(e)
    })
}

/// Every weight of a model in the canonical layout (PyTorch's `[out, in]`), by canonical name:
/// what [`write_f32`] saves. A structurally pruned model exports its new shapes, and loads back
/// on any backend whose model reads its sizes from its weights.
pub fn from_model<M: Model>(model: &M) -> Result<TensorMap> {
    let be = model.backend();
    let mut out = TensorMap::new();
    for info in model.weights()? {
        let stored = be.to_vec(&model.weight(&info.name)?)?;
        out.insert(
            info.name.clone(),
            HostTensor {
                data: to_canonical(stored, info.layout, &info.shape),
                shape: info.shape,
            },
        );
    }
    Ok(out)
}

/// Writes canonical tensors (what [`from_model`] gives, or a file read by [`read_f32`]) into
/// the model's weights of the same names, all or none. Every weight of the model must be
/// there, in its current shape; extra tensors are an error too, naming them.
pub fn into_model<M: Model>(model: &mut M, tensors: &TensorMap) -> Result<()> {
    let weights = model.weights()?;
    if let Some(extra) = tensors
        .keys()
        .find(|name| !weights.iter().any(|w| &w.name == *name))
    {
        let names: Vec<String> = weights.iter().map(|w| w.name.clone()).collect();
        return Err(PruneError::UnknownWeight {
            weight: extra.clone(),
            candidates: prune_core::suggest::closest(extra, &names, 3),
        });
    }
    let be = model.backend().clone();
    let mut updates = Vec::with_capacity(weights.len());
    for (i, info) in weights.iter().enumerate() {
        let t = tensors.get(&info.name).ok_or_else(|| PruneError::Shape {
            weight: info.name.clone(),
            shape: info.shape.clone(),
            reason: "missing from the tensors given".into(),
        })?;
        if t.shape != info.shape {
            return Err(PruneError::Shape {
                weight: info.name.clone(),
                shape: t.shape.clone(),
                reason: format!("the model's weight has shape {:?}", info.shape),
            });
        }
        let like = model.weight_at(WeightId(i))?;
        let stored_shape = be.shape(&like);
        let stored = to_stored(t.data.clone(), info.layout, &info.shape);
        updates.push((WeightId(i), be.from_vec(&like, stored, &stored_shape)?));
    }
    model.set_weights(updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("prune-io-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn written_files_read_back_identically() {
        let dir = dir("rt");
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
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn crafted_headers_are_refused() {
        let dir = dir("bad");
        let path = dir.join("t.safetensors");
        std::fs::write(&path, [1u8, 0, 0, 0, 0, 0, 0, 0, b'x']).unwrap();
        let err = read_f32(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid safetensors file"), "{err}");
        // A header length far past the file end.
        std::fs::write(&path, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, b'{', b'}']).unwrap();
        assert!(read_f32(&path).is_err());
        // Offsets that do not hold the shape's values.
        let header = br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0u8; 8]);
        std::fs::write(&path, bytes).unwrap();
        let err = read_f32(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid safetensors file"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn half_precision_tensors_read_as_f32() {
        let dir = dir("half");
        let path = dir.join("h.safetensors");
        let vals = [1.5f32, -0.25, 3.0];
        let f16: Vec<u8> = vals
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        let bf16: Vec<u8> = vals
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect();
        let ids: Vec<u8> = [0i64, 1, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
        let views = vec![
            (
                "a",
                safetensors::tensor::TensorView::new(Dtype::F16, vec![3], &f16).unwrap(),
            ),
            (
                "b",
                safetensors::tensor::TensorView::new(Dtype::BF16, vec![3], &bf16).unwrap(),
            ),
            (
                "ids",
                safetensors::tensor::TensorView::new(Dtype::I64, vec![3], &ids).unwrap(),
            ),
        ];
        safetensors::serialize_to_file(views, None, &path).unwrap();
        let (back, skipped) = read_f32(&path).unwrap();
        assert_eq!(back["a"].data, vals);
        assert_eq!(back["b"].data, vals);
        assert_eq!(skipped, vec!["ids".to_string()]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
