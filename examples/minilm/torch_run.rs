//! The MiniLM flow on tch (libtorch CPU).

use crate::Student;
use anyhow::{Context, Result};
use prune::nlp::Encoded;
use prune::torch::bert::{contrastive_importance_step, Bert, BertBatch, BertConfig};
use prune::torch::{TorchModel, TorchPruning};
use prune::LayerOutcome;
use prune::{Model, Pruning, PruningConfig};
use std::path::Path;
use tch::nn::{OptimizerConfig, VarStore};
use tch::{Device, Kind, Tensor};

pub struct TorchStudent {
    teacher: Bert,
    _teacher_vs: VarStore,
    bert: Bert,
    model: TorchModel<VarStore>,
    pruning: TorchPruning,
    optim: Option<tch::nn::Optimizer>,
    config: BertConfig,
}

fn batch(e: &Encoded) -> Result<BertBatch> {
    Ok(BertBatch::new(&e.ids, &e.mask, e.rows, e.seq, Device::Cpu)?)
}

fn host(t: &Tensor) -> Result<Vec<f32>> {
    Vec::<f32>::try_from(t.flatten(0, -1)).context("reading a tch tensor")
}

impl TorchStudent {
    pub fn load(dir: &Path, config: PruningConfig) -> Result<Self> {
        tch::manual_seed(7);
        let (tensors, _) = prune::io::read_f32(dir.join("model.safetensors"))?;
        let teacher_vs = VarStore::new(Device::Cpu);
        let teacher = Bert::from_tensors(&teacher_vs, &tensors).context("loading the teacher")?;
        let vs = VarStore::new(Device::Cpu);
        let bert = Bert::from_tensors(&vs, &tensors).context("loading the student")?;
        Ok(TorchStudent {
            teacher,
            _teacher_vs: teacher_vs,
            bert,
            model: TorchModel::new(vs),
            pruning: Pruning::new(config)?,
            optim: None,
            config: BertConfig::minilm(),
        })
    }

    fn zero_grads(&self) {
        for (_, mut v) in self.model.var_store().variables() {
            v.zero_grad();
        }
    }
}

impl Student for TorchStudent {
    fn teacher_embed(&self, e: &Encoded) -> Result<Vec<f32>> {
        tch::no_grad(|| host(&self.teacher.embed(&batch(e)?, None, &self.config)?))
    }

    fn student_embed(&self, e: &Encoded) -> Result<Vec<f32>> {
        tch::no_grad(|| host(&self.bert.embed(&batch(e)?, None, &self.config)?))
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
            &self.bert,
            &batch(a)?,
            &batch(b)?,
            &self.config,
        )?)
    }

    fn end(&mut self) -> Result<()> {
        self.pruning.on_epoch_end(&mut self.model)?;
        self.pruning.on_train_end(&mut self.model)?;
        self.zero_grads();
        Ok(())
    }

    fn outcome(&self) -> Vec<LayerOutcome> {
        self.pruning.structured_outcome()
    }

    fn distill_step(&mut self, e: &Encoded, teacher: &[f32], lr: f64) -> Result<f32> {
        if self.optim.is_none() {
            // Built after the shrink, so its state matches the smaller weights.
            self.optim = Some(tch::nn::Adam::default().build(self.model.var_store(), lr)?);
        }
        let optim = self.optim.as_mut().expect("set above");
        optim.set_lr(lr);
        let student = self.bert.embed(&batch(e)?, None, &self.config)?;
        let target = Tensor::from_slice(teacher)
            .reshape([e.rows as i64, (teacher.len() / e.rows.max(1)) as i64]);
        let loss: Tensor = (student * target)
            .sum_dim_intlist(1, false, Kind::Float)
            .mean(Kind::Float)
            .neg()
            + 1.0;
        optim.zero_grad();
        loss.backward();
        optim.step();
        Ok(loss.double_value(&[]) as f32)
    }

    fn params(&self) -> Result<(usize, usize)> {
        let count = |vs: &VarStore| -> usize { vs.variables().values().map(|t| t.numel()).sum() };
        Ok((
            count(&self._teacher_vs),
            self.model.weights()?.iter().map(|w| w.numel()).sum(),
        ))
    }

    fn sizes(&self) -> (Vec<usize>, Vec<usize>) {
        (self.bert.heads(&self.config), self.bert.ffn())
    }

    fn shrunk(&self) -> Vec<prune::ShrinkOp> {
        self.pruning.shrunk().to_vec()
    }

    fn export(&self) -> Result<prune::io::TensorMap> {
        Ok(prune::io::from_model(&self.model)?)
    }
}
