//! ResNet-18 of burn layers with torchvision's parameter names (`conv1`, `bn1`,
//! `layer1.0.conv1`, ..., `layer2.0.downsample.0`, `layer2.0.downsample.1`, `fc`), so that a
//! checkpoint saved from PyTorch or tch loads as is and one config names its weights on every
//! framework. Shared by the cnn example and tests/resnet.rs.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

fn conv(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    padding: usize,
    stride: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_bias(false)
        .init(device)
}

/// One layer of torchvision's `downsample` Sequential: an enum's variant is not part of a
/// parameter's name, so the two layers go by `downsample.0` and `downsample.1`.
#[derive(Module, Debug)]
pub enum DownsampleLayer {
    Conv(Conv2d),
    Norm(BatchNorm),
}

/// Two 3 x 3 convs with batch norms, and the residual sum (through a 1 x 1 conv and a batch
/// norm when the shape changes).
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    /// Empty when the block keeps its input's shape.
    downsample: Vec<DownsampleLayer>,
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, device: &Device) -> BasicBlock {
        let downsample = if stride != 1 || c_in != c_out {
            vec![
                DownsampleLayer::Conv(conv(c_in, c_out, 1, 0, stride, device)),
                DownsampleLayer::Norm(BatchNormConfig::new(c_out).init(device)),
            ]
        } else {
            Vec::new()
        };
        BasicBlock {
            conv1: conv(c_in, c_out, 3, 1, stride, device),
            bn1: BatchNormConfig::new(c_out).init(device),
            conv2: conv(c_out, c_out, 3, 1, 1, device),
            bn2: BatchNormConfig::new(c_out).init(device),
            downsample,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let y = self.bn2.forward(self.conv2.forward(y));
        let shortcut = self.downsample.iter().fold(x, |x, layer| match layer {
            DownsampleLayer::Conv(c) => c.forward(x),
            DownsampleLayer::Norm(n) => n.forward(x),
        });
        relu(y + shortcut)
    }
}

/// ResNet-18: a 7 x 7 stem, four stages of two basic blocks, global average pooling, `fc`.
#[derive(Module, Debug)]
pub struct ResNet18 {
    conv1: Conv2d,
    bn1: BatchNorm,
    maxpool: MaxPool2d,
    layer1: Vec<BasicBlock>,
    layer2: Vec<BasicBlock>,
    layer3: Vec<BasicBlock>,
    layer4: Vec<BasicBlock>,
    avgpool: AdaptiveAvgPool2d,
    fc: Linear,
}

impl ResNet18 {
    pub fn new(classes: usize, device: &Device) -> ResNet18 {
        let stage = |c_in, c_out, stride| {
            vec![
                BasicBlock::new(c_in, c_out, stride, device),
                BasicBlock::new(c_out, c_out, 1, device),
            ]
        };
        ResNet18 {
            conv1: conv(3, 64, 7, 3, 2, device),
            bn1: BatchNormConfig::new(64).init(device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: stage(64, 64, 1),
            layer2: stage(64, 128, 2),
            layer3: stage(128, 256, 2),
            layer4: stage(256, 512, 2),
            avgpool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(512, classes).init(device),
        }
    }

    /// Logits `[batch, classes]` of images `[batch, 3, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self
            .maxpool
            .forward(relu(self.bn1.forward(self.conv1.forward(x))));
        let x = [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flatten()
            .fold(x, |x, block| block.forward(x));
        self.fc.forward(self.avgpool.forward(x).flatten(1, 3))
    }
}
