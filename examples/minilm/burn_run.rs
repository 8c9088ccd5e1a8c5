//! The MiniLM flow on burn (flex CPU device).

use crate::Student;
use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use prune::burn::bert::{contrastive_importance_step, Bert, BertBatch, BertConfig};
use prune::burn::{BurnModel, BurnPruning};
use prune::nlp::Encoded;
use prune::LayerOutcome;
use prune::{Model, Pruning, PruningConfig};
use std::path::Path;

pub struct BurnStudent {
    teacher: Bert,
    model: BurnModel<Bert>,
    pruning: BurnPruning,
    optim: Option<ModuleOptimizer>,
    config: BertConfig,
    device: Device,
    plain: Device,
}

fn batch(e: &Encoded, device: &Device) -> Result<BertBatch> {
    Ok(BertBatch::new(&e.ids, &e.mask, e.rows, e.seq, device)?)
}

fn host(t: Tensor<2>) -> Result<Vec<f32>> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading a burn tensor: {e:?}"))
}

impl BurnStudent {
    pub fn load(dir: &Path, config: PruningConfig) -> Result<Self> {
        let plain = Device::flex();
        let device = plain.clone().autodiff();
        device.seed(7);
        let (tensors, _) = prune::io::read_f32(dir.join("model.safetensors"))?;
        let teacher = Bert::from_tensors(&tensors, &plain).context("loading the teacher")?;
        let student = Bert::from_tensors(&tensors, &device).context("loading the student")?;
        Ok(BurnStudent {
            teacher,
            model: BurnModel::new(student),
            pruning: Pruning::new(config)?,
            optim: None,
            config: BertConfig::minilm(),
            device,
            plain,
        })
    }
}

impl Student for BurnStudent {
    fn teacher_embed(&self, e: &Encoded) -> Result<Vec<f32>> {
        host(
            self.teacher
                .embed(&batch(e, &self.plain)?, None, &self.config)?,
        )
    }

    fn student_embed(&self, e: &Encoded) -> Result<Vec<f32>> {
        let valid = self.model.module().valid();
        host(valid.embed(&batch(e, &self.plain)?, None, &self.config)?)
    }

    fn begin(&mut self) -> Result<()> {
        self.pruning.on_train_begin(&mut self.model)?;
        self.pruning.on_epoch_begin(&mut self.model, 0)?;
        Ok(())
    }

    fn importance_step(&mut self, a: &Encoded, b: &Encoded) -> Result<f32> {
        Ok(contrastive_importance_step(
            &mut self.pruning,
            &mut self.model,
            &batch(a, &self.device)?,
            &batch(b, &self.device)?,
            &self.config,
        )?)
    }

    fn end(&mut self) -> Result<()> {
        self.pruning.on_epoch_end(&mut self.model)?;
        self.pruning.on_train_end(&mut self.model)?;
        Ok(())
    }

    fn outcome(&self) -> Vec<LayerOutcome> {
        self.pruning.structured_outcome()
    }

    fn distill_step(&mut self, e: &Encoded, teacher: &[f32], lr: f64) -> Result<f32> {
        let optim = self.optim.get_or_insert_with(|| AdamConfig::new().init());
        let m = self.model.module();
        let student = m.embed(&batch(e, &self.device)?, None, &self.config)?;
        let target = Tensor::<2>::from_data(
            TensorData::new(teacher.to_vec(), [e.rows, teacher.len() / e.rows.max(1)]),
            &self.device,
        );
        let loss = (student * target).sum_dim(1).mean().neg() + 1.0;
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), self.model.module());
        self.model.set_grads(grads);
        self.model.optimizer_step(optim, lr)?;
        Ok(value)
    }

    fn params(&self) -> Result<(usize, usize)> {
        let count = |m: &BurnModel<Bert>| -> Result<usize> {
            Ok(m.weights()?.iter().map(|w| w.numel()).sum())
        };
        let dense = self.teacher.num_params();
        Ok((dense, count(&self.model)?))
    }

    fn sizes(&self) -> (Vec<usize>, Vec<usize>) {
        let m = self.model.module();
        (m.heads(&self.config), m.ffn())
    }

    fn shrunk(&self) -> Vec<prune::ShrinkOp> {
        self.pruning.shrunk().to_vec()
    }

    fn export(&self) -> Result<prune::io::TensorMap> {
        Ok(prune::io::from_model(&self.model)?)
    }
}
