//! Sparsity measured on a model's weights.

use serde::Serialize;

/// Zeros of one weight.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSparsity {
    /// Canonical name.
    pub name: String,
    /// Canonical shape.
    pub shape: Vec<usize>,
    /// Elements exactly zero.
    pub zeros: usize,
    /// All elements.
    pub numel: usize,
}

impl LayerSparsity {
    /// zeros / numel.
    pub fn sparsity(&self) -> f64 {
        if self.numel == 0 {
            0.0
        } else {
            self.zeros as f64 / self.numel as f64
        }
    }
}

/// Zeros of every weight a session prunes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SparsityReport {
    /// One entry per weight, in model order.
    pub layers: Vec<LayerSparsity>,
}

impl SparsityReport {
    /// Zeros over elements of all weights together.
    pub fn overall(&self) -> f64 {
        let (z, n) = self
            .layers
            .iter()
            .fold((0, 0), |(z, n), l| (z + l.zeros, n + l.numel));
        if n == 0 {
            0.0
        } else {
            z as f64 / n as f64
        }
    }

    /// A text table: name, shape, zeros, sparsity.
    pub fn table(&self) -> String {
        let width = self
            .layers
            .iter()
            .map(|l| l.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut s = format!(
            "{:<width$}  {:>14}  {:>10}  {:>8}\n",
            "name", "shape", "zeros", "sparsity"
        );
        for l in &self.layers {
            let shape = format!("{:?}", l.shape);
            s += &format!(
                "{:<width$}  {:>14}  {:>10}  {:>7.2}%\n",
                l.name,
                shape,
                l.zeros,
                100.0 * l.sparsity()
            );
        }
        s += &format!(
            "{:<width$}  {:>14}  {:>10}  {:>7.2}%\n",
            "overall",
            "",
            self.layers.iter().map(|l| l.zeros).sum::<usize>(),
            100.0 * self.overall()
        );
        s
    }
}
