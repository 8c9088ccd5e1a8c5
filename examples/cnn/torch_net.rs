//! The MNIST network of tch layers (shared by the cnn example and tests/cnn.rs).

use tch::nn::{self, ModuleT};
use tch::Tensor;

/// The same network as burn's: `conv1 bn1 relu pool | conv2 bn2 relu pool | fc1`.
#[derive(Debug)]
pub struct MnistCnn {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    fc1: nn::Linear,
}

impl MnistCnn {
    pub fn new(root: &nn::Path, c1: i64, c2: i64, classes: i64) -> MnistCnn {
        let conv = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        MnistCnn {
            conv1: nn::conv2d(root / "conv1", 1, c1, 3, conv),
            bn1: nn::batch_norm2d(root / "bn1", c1, Default::default()),
            conv2: nn::conv2d(root / "conv2", c1, c2, 3, conv),
            bn2: nn::batch_norm2d(root / "bn2", c2, Default::default()),
            fc1: nn::linear(root / "fc1", c2 * 7 * 7, classes, Default::default()),
        }
    }
}

impl ModuleT for MnistCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.view([-1, 1, 28, 28])
            .apply(&self.conv1)
            .apply_t(&self.bn1, train)
            .relu()
            .max_pool2d_default(2)
            .apply(&self.conv2)
            .apply_t(&self.bn2, train)
            .relu()
            .max_pool2d_default(2)
            .flat_view()
            .apply(&self.fc1)
    }
}
