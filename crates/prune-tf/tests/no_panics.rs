//! Inputs that used to panic in the TensorFlow loop (an MLP without sizes, a label past the
//! classes, logits without a class axis) are refused with errors naming what is wrong.

use prune_core::PruningConfig;
use prune_tf::train::{accuracy, mlp, train_dense, Builder, TfClassifier};
use prune_train::{Dataset, TrainConfig};
use tensorflow::{ops, DataType, Shape};

fn train_config() -> TrainConfig {
    let yaml = "pruning:\n  train:\n    end_epoch: 1\n    dataloader: {batch_size: 4}\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            names: ['fc1/kernel']\n";
    TrainConfig::from_config(&PruningConfig::from_yaml(yaml).unwrap(), "cfg").unwrap()
}

#[test]
fn an_mlp_without_input_and_output_sizes_is_refused() {
    for sizes in [&[][..], &[4][..]] {
        let err = mlp(sizes, &train_config(), 0).err().unwrap().to_string();
        assert!(
            err.contains("weight `mlp`")
                && err.contains("at least the input and the output size")
                && err.contains(&format!("{sizes:?}")),
            "{err}"
        );
    }
}

#[test]
fn a_label_past_the_classes_is_refused() {
    let mut data = Dataset::from_csv("1,2,0\n3,4,1\n5,6,1\n", 1.0).unwrap();
    data.n_classes = 1;
    let (mut model, net) = mlp(&[2, 1], &train_config(), 0).unwrap();
    let err = train_dense(&mut model, &net, &data, &train_config(), 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has label 1, and the dataset has 1 classes"),
        "{err}"
    );
}

#[test]
fn logits_of_rank_one_are_refused_by_the_predictions() {
    // A graph whose "logits" are one number per row.
    let mut b = Builder::default();
    let s = &mut b.scope;
    let x = ops::Placeholder::new()
        .dtype(DataType::Float)
        .shape(Shape::from(Some(vec![None, Some(2)])))
        .build(&mut s.with_op_name("x"))
        .unwrap();
    let axis = ops::constant(&[1i32][..], s).unwrap();
    let logits: tensorflow::Output = ops::sum(x.clone(), axis, s).unwrap().into();
    let model = b.finish(&[]).unwrap();
    let net = TfClassifier {
        y: x.clone(),
        loss: logits.clone(),
        train_op: x.clone(),
        x,
        logits,
    };
    let data = Dataset::from_csv("1,2,0\n3,4,1\n", 1.0).unwrap();
    let err = accuracy(&model, &net, &data).unwrap_err().to_string();
    assert!(
        err.contains("`logits`") && err.contains("rank-1 logits for 2 rows"),
        "{err}"
    );
}
