//! The MNIST network of burn layers (shared by the cnn example and tests/cnn.rs).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use prune::burn::train::Classifier;

/// `conv1 (1 -> c1, 3x3) bn1 relu pool2 | conv2 (c1 -> c2, 3x3) bn2 relu pool2 | fc1 (c2*7*7 -> 10)`
/// on 28 x 28 images given as rows of 784 pixels.
#[derive(Module, Debug)]
pub struct MnistCnn {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    pool: MaxPool2d,
    fc1: Linear,
}

impl MnistCnn {
    pub fn new(c1: usize, c2: usize, classes: usize, device: &Device) -> MnistCnn {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        MnistCnn {
            conv1: conv(1, c1),
            bn1: BatchNormConfig::new(c1).init(device),
            conv2: conv(c1, c2),
            bn2: BatchNormConfig::new(c2).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(c2 * 7 * 7, classes).init(device),
        }
    }
}

impl Classifier for MnistCnn {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        let [n, _] = x.dims();
        let x = x.reshape([n, 1, 28, 28]);
        let x = self
            .pool
            .forward(relu(self.bn1.forward(self.conv1.forward(x))));
        let x = self
            .pool
            .forward(relu(self.bn2.forward(self.conv2.forward(x))));
        self.fc1.forward(x.flatten(1, 3))
    }
}
