//! Networks end to end: dilated ResNet + ASPP forward/backward, checkpoints, names
//! that match torchvision, and real ImageNet MobileNetV2 weights classifying photos.

mod common;

use std::path::Path;

use common::{data, scratch};
use wgseg::nn::aspp::deeplab_head;
use wgseg::nn::builder::Builder;
use wgseg::nn::checkpoint;
use wgseg::nn::mobilenet::MobileNetV2;
use wgseg::nn::resnet::{Depth, ResNet};
use wgseg::nn::{parameters, state_dict, Module, Sequential};
use wgseg::{Gpu, Tensor, Var};

fn random_input(gpu: &Gpu, shape: &[usize]) -> Var {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    Var::constant(Tensor::from_slice(gpu, &v, shape).unwrap())
}

#[test]
fn dilated_resnet18_with_aspp_runs_forward_and_backward() {
    let gpu = Gpu::shared().unwrap();
    let mut b = Builder::new(&gpu, 1);
    let backbone = ResNet::new(&mut b, Depth::R18, 8, 1.0).unwrap();
    let head = deeplab_head(&mut b, backbone.out_channels(), &[6, 12, 18], 256, 5, 0.5).unwrap();
    let x = random_input(&gpu, &[2, 3, 64, 64]);
    let features = backbone.forward(&x).unwrap();
    assert_eq!(features.shape(), vec![2, 512, 8, 8], "output stride 8");
    let logits = head.forward(&features).unwrap();
    assert_eq!(logits.shape(), vec![2, 5, 8, 8]);
    let loss = logits.pow(2.0).unwrap().mean(None, false).unwrap();
    loss.backward().unwrap();
    let params: Vec<(String, Var)> = parameters(&backbone)
        .into_iter()
        .chain(parameters(&head))
        .collect();
    for (name, p) in &params {
        let g = p.grad().unwrap_or_else(|| panic!("{name} got no gradient"));
        assert_eq!(g.shape(), p.value().shape(), "{name}");
    }
    let g = params[0].1.grad().unwrap().to_vec().unwrap();
    assert!(
        g.iter().all(|v| v.is_finite()) && g.iter().any(|&v| v != 0.0),
        "conv1 gradient"
    );
}

#[test]
fn resnet_names_and_output_strides_follow_torchvision() {
    let gpu = Gpu::shared().unwrap();
    let mut b = Builder::new(&gpu, 2);
    let r50 = ResNet::new(&mut b, Depth::R50, 16, 0.25).unwrap();
    let names: Vec<String> = state_dict(&r50).into_iter().map(|(n, _)| n).collect();
    for want in [
        "conv1.weight",
        "bn1.running_var",
        "layer1.0.conv3.weight",
        "layer1.0.downsample.0.weight",
        "layer4.2.bn3.bias",
    ] {
        assert!(names.iter().any(|n| n == want), "missing {want}");
    }
    // torchvision's resnet50 state_dict without fc: 265 tensors besides num_batches_tracked.
    assert_eq!(names.len(), 265);
    let y = r50.forward(&random_input(&gpu, &[1, 3, 32, 32])).unwrap();
    assert_eq!(y.shape(), vec![1, 512, 2, 2]);
}

#[test]
fn resnet_convolutions_start_as_torchvision_initialises_them() {
    // kaiming_normal_(mode="fan_out", nonlinearity="relu"): N(0, 2 / (out * k * k));
    // batch norm starts as the identity.
    let gpu = Gpu::shared().unwrap();
    let mut b = Builder::new(&gpu, 6);
    let r18 = ResNet::new(&mut b, Depth::R18, 8, 0.5).unwrap();
    for (name, p) in parameters(&r18) {
        let v = p.value().to_vec().unwrap();
        let shape = p.value().shape().to_vec();
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let std = (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        if shape.len() == 1 && name.ends_with(".weight") {
            assert!(v.iter().all(|&x| x == 1.0), "{name}");
        } else if shape.len() == 1 {
            assert!(v.iter().all(|&x| x == 0.0), "{name}");
        } else if shape.len() == 4 && n >= 2000.0 {
            let want = (2.0 / (shape[0] * shape[2] * shape[3]) as f64).sqrt();
            assert!(mean.abs() < 0.1 * want, "{name}: mean {mean}");
            assert!(
                (std / want - 1.0).abs() < 0.08,
                "{name}: std {std}, want {want}"
            );
        }
    }
}

fn resnet_with_head(gpu: &Gpu, seed: u64) -> Sequential {
    let mut b = Builder::new(gpu, seed);
    let backbone = ResNet::new(&mut b, Depth::R18, 8, 0.25).unwrap();
    let head = deeplab_head(&mut b, backbone.out_channels(), &[2, 4], 16, 3, 0.5).unwrap();
    Sequential::new(vec![Box::new(backbone), Box::new(head)])
}

fn all_values(m: &dyn Module) -> Vec<(String, Vec<u32>)> {
    state_dict(m)
        .into_iter()
        .map(|(n, s)| {
            (
                n,
                s.tensor()
                    .to_vec()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn checkpoints_round_trip_bit_exactly() {
    let gpu = Gpu::shared().unwrap();
    let a = resnet_with_head(&gpu, 3);
    // One training-mode forward so the running statistics are no longer their defaults.
    a.forward(&random_input(&gpu, &[2, 3, 32, 32])).unwrap();
    let path = scratch("ckpt").join("model.safetensors");
    checkpoint::save(&a, &path).unwrap();
    let b = resnet_with_head(&gpu, 4);
    assert_ne!(all_values(&a), all_values(&b));
    let unused = checkpoint::load(&b, &path, true).unwrap();
    assert!(unused.is_empty());
    assert_eq!(all_values(&a), all_values(&b));
    a.set_training(false);
    b.set_training(false);
    let x = random_input(&gpu, &[1, 3, 32, 32]);
    assert_eq!(
        a.forward(&x).unwrap().value().to_vec().unwrap(),
        b.forward(&x).unwrap().value().to_vec().unwrap()
    );
}

#[test]
fn checkpoint_errors_name_the_tensor() {
    let gpu = Gpu::shared().unwrap();
    let dir = scratch("ckpt_errors");
    let mut b = Builder::new(&gpu, 6);
    let small = ResNet::new(&mut b, Depth::R18, 8, 0.25).unwrap();
    let path = dir.join("small.safetensors");
    checkpoint::save(&small, &path).unwrap();
    let wider = ResNet::new(&mut b, Depth::R18, 8, 0.5).unwrap();
    let e = checkpoint::load(&wider, &path, false)
        .unwrap_err()
        .to_string();
    let want = "tensor conv1.weight has shape [16, 3, 7, 7], the model expects [32, 3, 7, 7]";
    assert!(e.contains("small.safetensors") && e.contains(want), "{e}");
    let deeper = ResNet::new(&mut b, Depth::R34, 8, 0.25).unwrap();
    let e = checkpoint::load(&deeper, &path, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("checkpoint has no tensor layer1.2.conv1.weight"),
        "{e}"
    );
    // Strict loading refuses tensors the model does not have.
    let full = dir.join("with_head.safetensors");
    checkpoint::save(&resnet_with_head(&gpu, 5), &full).unwrap();
    let mut b = Builder::new(&gpu, 7);
    let prefixed = Sequential::new(vec![Box::new(
        ResNet::new(&mut b, Depth::R18, 8, 0.25).unwrap(),
    )]);
    let e = checkpoint::load(&prefixed, &full, true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is not part of the model"), "{e}");
    assert!(!checkpoint::load(&prefixed, &full, false)
        .unwrap()
        .is_empty());
    // A weight that is not a finite number is named, not loaded.
    let poisoned = dir.join("nan.safetensors");
    let mut tensors: Vec<(String, Tensor)> = state_dict(&small)
        .into_iter()
        .map(|(n, s)| (n, s.tensor()))
        .collect();
    let (name, t) = tensors[1].clone();
    let mut v = t.to_vec().unwrap();
    v[3] = f32::NAN;
    tensors[1].1 = Tensor::from_slice(&gpu, &v, t.shape()).unwrap();
    wgseg::io::write(&poisoned, &tensors).unwrap();
    let e = checkpoint::load(&small, &poisoned, false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!(
            "tensor {name}: element 3 is NaN, not a finite number"
        )),
        "{e}"
    );
    let e = checkpoint::load(&deeper, Path::new("/nonexistent/x.safetensors"), false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("/nonexistent/x.safetensors"), "{e}");
}

/// torchvision preprocessing: shorter side to 256 (bilinear), centre crop 224,
/// ImageNet mean/std normalisation; returns [1, 3, 224, 224].
fn preprocess(gpu: &Gpu, path: &Path) -> Var {
    let img = image::open(path).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let scale = 256.0 / w.min(h) as f64;
    let (nw, nh) = (
        (w as f64 * scale).round() as u32,
        (h as f64 * scale).round() as u32,
    );
    let resized = image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((nw - 224) / 2, (nh - 224) / 2);
    let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
    let mut v = vec![0f32; 3 * 224 * 224];
    for y in 0..224u32 {
        for x in 0..224u32 {
            let p = resized.get_pixel(x0 + x, y0 + y);
            for c in 0..3 {
                v[c * 224 * 224 + (y * 224 + x) as usize] =
                    (p[c] as f32 / 255.0 - mean[c]) / std[c];
            }
        }
    }
    Var::constant(Tensor::from_slice(gpu, &v, &[1, 3, 224, 224]).unwrap())
}

#[test]
fn pretrained_mobilenet_v2_classifies_real_photos() {
    let gpu = Gpu::shared().unwrap();
    let mut b = Builder::new(&gpu, 0);
    let net = MobileNetV2::new(&mut b, 1.0, 32, Some(1000)).unwrap();
    // Strict: every tensor of torchvision's state_dict maps onto the model and back.
    let unused = checkpoint::load(
        &net,
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("assets/pretrained/mobilenet_v2_imagenet.safetensors"),
        true,
    )
    .unwrap();
    assert!(unused.is_empty());
    net.set_training(false);
    for (file, class) in [("chelsea.png", 285usize), ("coffee.png", 967)] {
        let logits = net
            .forward(&preprocess(&gpu, &data(&format!("images/{file}"))))
            .unwrap();
        let probs = logits.softmax(1).unwrap().value().to_vec().unwrap();
        let (top, p) = probs
            .iter()
            .enumerate()
            .fold((0, 0f32), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
        assert_eq!(top, class, "{file}: top-1 {top} ({p:.3}), expected {class}");
    }
}

#[test]
fn mobilenet_output_stride_and_train_eval_switch() {
    let gpu = Gpu::shared().unwrap();
    let mut b = Builder::new(&gpu, 8);
    let net = MobileNetV2::new(&mut b, 0.35, 8, None).unwrap();
    let x = random_input(&gpu, &[2, 3, 32, 32]);
    let train = net.features(&x).unwrap();
    assert_eq!(train.shape()[2..], [4, 4], "output stride 8");
    net.set_training(false);
    let eval = net.features(&x).unwrap();
    assert_ne!(
        train.value().to_vec().unwrap(),
        eval.value().to_vec().unwrap(),
        "eval must use running stats"
    );
}

#[test]
fn a_shortened_mobilenet_keeps_torchvisions_first_layers_and_their_weights() {
    let gpu = Gpu::shared().unwrap();
    let mut b = Builder::new(&gpu, 3);
    let net = MobileNetV2::features_only(&mut b, 1.0, 16, 14).unwrap();
    assert_eq!(net.out_channels(), 96);
    let names: Vec<String> = state_dict(&net).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().any(|n| n.starts_with("features.13.")),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.starts_with("features.14.")),
        "{names:?}"
    );
    // The ImageNet file holds all 19 layers and the classifier: the rest is ignored.
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/pretrained/mobilenet_v2_imagenet.safetensors");
    let extra = checkpoint::load(&net, &file, false).unwrap();
    assert!(
        extra.iter().any(|n| n.starts_with("features.18.")),
        "{extra:?}"
    );
    let x = random_input(&gpu, &[1, 3, 64, 64]);
    assert_eq!(net.features(&x).unwrap().shape(), [1, 96, 4, 4]);
    let e = MobileNetV2::features_only(&mut b, 1.0, 16, 20)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("feature_layers 20 must lie in 1..=19"), "{e}");
}

#[test]
fn projection_head_gives_unit_embeddings_per_pixel() {
    let gpu = Gpu::shared().unwrap();
    let mut b = Builder::new(&gpu, 9);
    let head = wgseg::nn::heads::ProjectionHead::new(&mut b, 6, 4).unwrap();
    let y = head.forward(&random_input(&gpu, &[2, 6, 3, 5])).unwrap();
    assert_eq!(y.shape(), vec![2, 4, 3, 5]);
    let v = y.value().to_vec().unwrap();
    for n in 0..2 {
        for p in 0..15 {
            let norm: f32 = (0..4)
                .map(|c| v[(n * 4 + c) * 15 + p].powi(2))
                .sum::<f32>()
                .sqrt();
            assert!(
                (norm - 1.0).abs() < 1e-5,
                "pixel {p} of image {n}: norm {norm}"
            );
        }
    }
    let names: Vec<String> = state_dict(&head).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "0.weight");
    assert!(names.contains(&"3.bias".to_string()));
    y.sum(None, false).unwrap().backward().unwrap();
    assert!(parameters(&head).iter().all(|(_, p)| p.grad().is_some()));
}
