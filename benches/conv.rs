//! conv2d forward, input-gradient and weight-gradient kernels on segmentation-sized
//! layers. Every iteration waits for the GPU, so the times are device times; the
//! element throughput criterion prints is FLOP/s.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wgseg::ops::conv::{
    conv2d, conv2d_backward_input, conv2d_backward_weight, conv2d_flops, Conv2dGeometry,
    Conv2dParams,
};
use wgseg::{Gpu, Tensor};

struct Layer {
    name: &'static str,
    input: [usize; 4],
    cout: usize,
    k: usize,
    dilation: usize,
    padding: usize,
}

const LAYERS: &[Layer] = &[
    Layer {
        name: "n4 32->32 64x64 k3 d1",
        input: [4, 32, 64, 64],
        cout: 32,
        k: 3,
        dilation: 1,
        padding: 1,
    },
    Layer {
        name: "n4 32->32 64x64 k3 d2",
        input: [4, 32, 64, 64],
        cout: 32,
        k: 3,
        dilation: 2,
        padding: 2,
    },
    Layer {
        name: "n2 64->64 32x32 k3 d6",
        input: [2, 64, 32, 32],
        cout: 64,
        k: 3,
        dilation: 6,
        padding: 6,
    },
    Layer {
        name: "n4 256->32 32x32 k1",
        input: [4, 256, 32, 32],
        cout: 32,
        k: 1,
        dilation: 1,
        padding: 0,
    },
];

fn random(gpu: &Gpu, rng: &mut StdRng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_slice(gpu, &data, shape).expect("upload")
}

fn conv(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU or lavapipe");
    let mut rng = StdRng::seed_from_u64(7);
    let mut group = c.benchmark_group("conv2d");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for l in LAYERS {
        let p = Conv2dParams {
            padding: [l.padding; 2],
            dilation: [l.dilation; 2],
            ..Conv2dParams::default()
        };
        let weight_shape = [l.cout, l.input[1], l.k, l.k];
        let geom = Conv2dGeometry::new(&l.input, &weight_shape, p).expect("geometry");
        let x = random(&gpu, &mut rng, &l.input);
        let w = random(&gpu, &mut rng, &weight_shape);
        let b = random(&gpu, &mut rng, &[l.cout]);
        let gy = random(&gpu, &mut rng, &geom.output_shape());
        // Criterion reports element throughput; one "element" is one FLOP here.
        group.throughput(Throughput::Elements(conv2d_flops(&geom) as u64));
        group.bench_function(format!("forward {}", l.name), |it| {
            it.iter(|| {
                drop(conv2d(&x, &w, Some(&b), p).expect("forward"));
                gpu.sync().expect("sync");
            })
        });
        group.bench_function(format!("grad_input {}", l.name), |it| {
            it.iter(|| {
                drop(conv2d_backward_input(&gy, &w, &geom).expect("grad_input"));
                gpu.sync().expect("sync");
            })
        });
        group.bench_function(format!("grad_weight {}", l.name), |it| {
            it.iter(|| {
                drop(conv2d_backward_weight(&gy, &x, &geom).expect("grad_weight"));
                gpu.sync().expect("sync");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, conv);
criterion_main!(benches);
