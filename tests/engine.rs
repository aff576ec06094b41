//! Runtime, buffer pool, kernel overrides and autograd semantics.

mod common;

use common::scratch;
use wgseg::autograd::zero_grad;
use wgseg::{no_grad, Gpu, Tensor, Var};

fn t(gpu: &Gpu, data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(gpu, data, shape).unwrap()
}

fn close(a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn upload_download_and_image_round_trip() {
    let gpu = Gpu::shared().unwrap();
    let data: Vec<f32> = (0..37).map(|i| i as f32 * 0.5 - 3.0).collect();
    assert_eq!(t(&gpu, &data, &[37]).to_vec().unwrap(), data);
    let labels: Vec<u32> = (0..10).map(|i| i * 7).collect();
    assert_eq!(
        Tensor::from_u32(&gpu, &labels, &[2, 5])
            .unwrap()
            .to_vec_u32()
            .unwrap(),
        labels
    );
    let img = image::RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 50, y as u8 * 100, 255]));
    let ti = Tensor::from_image(&gpu, &image::DynamicImage::ImageRgb8(img)).unwrap();
    assert_eq!(ti.shape(), &[3, 2, 3]);
    let v = ti.to_vec().unwrap();
    assert_eq!(v[2], 100.0 / 255.0); // red channel, x = 2, y = 0
    assert_eq!(v[6 + 3], 100.0 / 255.0); // green channel, y = 1
    assert_eq!(v[12], 1.0);
    assert!(Tensor::from_slice(&gpu, &[1.0; 5], &[2, 3]).is_err());
}

#[test]
fn gradients_accumulate_when_a_value_feeds_several_ops() {
    let gpu = Gpu::shared().unwrap();
    // y = sum(x * x + x) -> dy/dx = 2x + 1
    let x = Var::leaf(t(&gpu, &[1.0, -2.0, 0.5], &[3]));
    let y = x
        .mul(&x)
        .unwrap()
        .add(&x)
        .unwrap()
        .sum(None, false)
        .unwrap();
    let grads = y.backward().unwrap();
    close(&grads.get(&x).unwrap().to_vec().unwrap(), &[3.0, -3.0, 2.0]);
    close(&x.grad().unwrap().to_vec().unwrap(), &[3.0, -3.0, 2.0]);
}

#[test]
fn leaf_grads_accumulate_across_backwards_until_zero_grad() {
    let gpu = Gpu::shared().unwrap();
    let w = Var::leaf(t(&gpu, &[2.0, 3.0], &[2]));
    for _ in 0..2 {
        w.mul_scalar(4.0)
            .unwrap()
            .sum(None, false)
            .unwrap()
            .backward()
            .unwrap();
    }
    close(&w.grad().unwrap().to_vec().unwrap(), &[8.0, 8.0]);
    zero_grad(std::slice::from_ref(&w));
    assert!(w.grad().is_none());
}

#[test]
fn gradients_of_intermediate_values() {
    let gpu = Gpu::shared().unwrap();
    // h = 3x, y = sum(h^2) -> dy/dh = 2h = 6x
    let x = Var::leaf(t(&gpu, &[1.0, 2.0], &[2]));
    let h = x.mul_scalar(3.0).unwrap();
    let y = h.pow(2.0).unwrap().sum(None, false).unwrap();
    let grads = y.backward().unwrap();
    close(&grads.get(&h).unwrap().to_vec().unwrap(), &[6.0, 12.0]);
    close(&grads.get(&x).unwrap().to_vec().unwrap(), &[18.0, 36.0]);
}

#[test]
fn no_grad_and_detach_cut_the_tape() {
    let gpu = Gpu::shared().unwrap();
    let x = Var::leaf(t(&gpu, &[1.0, 2.0], &[2]));
    let y = no_grad(|| x.mul_scalar(2.0).unwrap());
    assert!(!y.requires_grad());
    // z = sum(x * detach(x)): gradient is detach(x) only.
    let z = x.mul(&x.detach()).unwrap().sum(None, false).unwrap();
    let grads = z.backward().unwrap();
    close(&grads.get(&x).unwrap().to_vec().unwrap(), &[1.0, 2.0]);
}

#[test]
fn backward_needs_a_scalar_or_a_matching_seed() {
    let gpu = Gpu::shared().unwrap();
    let x = Var::leaf(t(&gpu, &[1.0, 2.0], &[2]));
    let y = x.relu().unwrap();
    assert!(y
        .backward()
        .unwrap_err()
        .to_string()
        .contains("needs a scalar"));
    assert!(y.backward_with(t(&gpu, &[1.0; 3], &[3])).is_err());
    assert!(Var::constant(t(&gpu, &[1.0], &[1])).backward().is_err());
}

/// One training-like step: forward, backward, and an update of the weight.
fn step(w: &Var, x: &Var) -> Tensor {
    let loss = x
        .matmul(w)
        .unwrap()
        .relu()
        .unwrap()
        .mean(None, false)
        .unwrap();
    let grads = loss.backward().unwrap();
    let g = grads.get(w).unwrap();
    let updated =
        wgseg::ops::kernels::sub(&w.value(), &wgseg::ops::kernels::scale(g, 0.1).unwrap()).unwrap();
    w.set_value(updated).unwrap();
    w.zero_grad();
    loss.value()
}

#[test]
fn repeated_steps_allocate_nothing_and_submit_once() {
    let gpu = Gpu::new().unwrap();
    let x = Var::constant(t(
        &gpu,
        &(0..24).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(),
        &[4, 6],
    ));
    let w = Var::leaf(t(
        &gpu,
        &(0..30).map(|i| (i as f32 * 0.71).cos()).collect::<Vec<_>>(),
        &[6, 5],
    ));
    step(&w, &x);
    step(&w, &x);
    let before = gpu.pool_stats();
    let submissions = gpu.submissions();
    let loss = step(&w, &x);
    assert_eq!(
        gpu.pool_stats().allocations,
        before.allocations,
        "a warm step allocated buffers"
    );
    assert_eq!(
        gpu.submissions(),
        submissions,
        "a step submitted work before anything was read"
    );
    loss.item().unwrap();
    assert_eq!(
        gpu.submissions(),
        submissions + 1,
        "reading the loss is one submission"
    );
}

#[test]
fn shader_overrides_take_effect_and_bad_ones_are_refused() {
    let gpu = Gpu::new().unwrap();
    let dir = scratch("override");
    let fill = include_str!("../shaders/elementwise_fill.wgsl")
        .replace("out[i] = p.value;", "out[i] = p.value * 2.0;");
    std::fs::write(dir.join("elementwise_fill.wgsl"), fill).unwrap();
    gpu.set_shader_dir(Some(dir.clone()));
    let v = wgseg::ops::kernels::full(&gpu, &[3], 1.5)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(v, vec![3.0; 3]);

    std::fs::write(
        dir.join("elementwise_fill.wgsl"),
        "struct P { n: u32 }\n@compute @workgroup_size(1)\nfn fill() { let a: u32 = 1.5; }\n",
    )
    .unwrap();
    gpu.set_shader_dir(Some(dir.clone()));
    let e = wgseg::ops::kernels::full(&gpu, &[3], 1.0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("elementwise_fill.wgsl:3:"), "{e}");
    gpu.set_shader_dir(None);
    assert_eq!(
        wgseg::ops::kernels::full(&gpu, &[2], 1.0)
            .unwrap()
            .to_vec()
            .unwrap(),
        vec![1.0; 2]
    );
}

#[test]
fn an_override_whose_uniform_struct_differs_is_refused_naming_the_field() {
    let gpu = Gpu::new().unwrap();
    let dir = scratch("uniform_fields");
    // The same two words, swapped: without the check the kernel would read the value
    // as the count.
    let swapped = include_str!("../shaders/elementwise_fill.wgsl").replace(
        "    n: u32,\n    value: f32,",
        "    value: f32,\n    n: u32,",
    );
    std::fs::write(dir.join("elementwise_fill.wgsl"), swapped).unwrap();
    gpu.set_shader_dir(Some(dir.clone()));
    let e = wgseg::ops::kernels::full(&gpu, &[3], 1.0)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("elementwise_fill.wgsl: fill: its uniform struct has fields [value@0, n@4]; the engine fills [n@0, value@4]"),
        "{e}"
    );
}

#[test]
fn a_header_is_spliced_into_each_shader_that_includes_it() {
    let source = wgseg::gpu::shader_source::load("label_transfer", None).unwrap();
    assert!(!source.text.contains("// #include"), "{}", source.text);
    assert!(source.text.contains("struct Params"), "{}", source.text);
    let dir = scratch("bad_include");
    std::fs::write(
        dir.join("label_transfer.wgsl"),
        "// #include no_such_header\n",
    )
    .unwrap();
    let e = wgseg::gpu::shader_source::load("label_transfer", Some(&dir))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no header shaders/include/no_such_header.wgsl"),
        "{e}"
    );
}

#[test]
fn embedded_shaders_validate_without_a_gpu() {
    for (name, result) in wgseg::gpu::shader_source::check_all(None).unwrap() {
        assert!(result.is_ok(), "{name}: {:?}", result.err());
    }
}

#[test]
fn large_tensors_use_two_dimensional_grids() {
    let gpu = Gpu::shared().unwrap();
    // 256 * 65535 elements need more workgroups than one dimension allows.
    let n = 256 * 65_536 + 5;
    let ones = wgseg::ops::kernels::full(&gpu, &[n], 1.0).unwrap();
    let s = wgseg::ops::kernels::reduce_sum("sum", &ones, &[0], false, 1.0).unwrap();
    assert_eq!(s.item().unwrap(), n as f32);
}

#[test]
fn matmul_and_linear_match_cpu_across_many_blocks() {
    let gpu = Gpu::shared().unwrap();
    let (b, m, k, n) = (2, 70, 33, 130);
    let av: Vec<f32> = (0..b * m * k)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let bv: Vec<f32> = (0..b * k * n)
        .map(|i| ((i * 53 % 97) as f32 / 48.0) - 1.0)
        .collect();
    let c =
        wgseg::ops::kernels::matmul(&t(&gpu, &av, &[b, m, k]), &t(&gpu, &bv, &[b, k, n])).unwrap();
    let mut want = vec![0f32; b * m * n];
    for z in 0..b {
        for i in 0..m {
            for j in 0..n {
                want[(z * m + i) * n + j] = (0..k)
                    .map(|l| av[(z * m + i) * k + l] * bv[(z * k + l) * n + j])
                    .sum();
            }
        }
    }
    assert!(common::rel_err(&c.to_vec().unwrap(), &want) < 1e-5);
    // linear reads its [n, k] weight transposed: compare with the same product.
    let w: Vec<f32> = (0..n * k).map(|i| bv[(i % k) * n + i / k]).collect();
    let y =
        wgseg::ops::linear::linear(&t(&gpu, &av[..m * k], &[m, k]), &t(&gpu, &w, &[n, k]), None)
            .unwrap();
    assert!(common::rel_err(&y.to_vec().unwrap(), &want[..m * n]) < 1e-5);
}

/// torch.relu(nan) is nan: a NaN that an activation turned into 0 would hide a
/// diverged network from the non-finite checks.
#[test]
fn relu_relu6_and_max_pool_pass_nan_through_as_torch() {
    let gpu = Gpu::shared().unwrap();
    let x = Var::constant(t(&gpu, &[f32::NAN, -1.5, 2.0, 7.0], &[4]));
    let relu = x.relu().unwrap().value().to_vec().unwrap();
    let relu6 = x.relu6().unwrap().value().to_vec().unwrap();
    assert!(relu[0].is_nan() && relu6[0].is_nan(), "{relu:?} {relu6:?}");
    assert_eq!(relu[1..], [0.0, 2.0, 7.0]);
    assert_eq!(relu6[1..], [0.0, 2.0, 6.0]);
    // torch.nn.functional.max_pool2d: a window holding NaN gives NaN, wherever it is.
    let x = Var::constant(t(
        &gpu,
        &[1.0, 3.0, -2.0, f32::NAN, 0.5, 4.0, -1.0, 2.0],
        &[1, 2, 2, 2],
    ));
    let pooled = x
        .max_pool2d(&wgseg::ops::pool::Pool2d::new([2, 2]))
        .unwrap()
        .value()
        .to_vec()
        .unwrap();
    assert!(pooled[0].is_nan(), "{pooled:?}");
    assert_eq!(pooled[1], 4.0);
}
