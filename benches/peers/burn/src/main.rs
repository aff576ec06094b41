//! Times the bench cases wgseg shares with Burn (conv2d forward and forward+backward,
//! matmul) on Burn's wgpu backend, with the same FLOP counts as `wgseg bench`.
//!
//!   cargo run --release --manifest-path benches/peers/burn/Cargo.toml -- [--iters N]
//!
//! Each case: 3 untimed warm-up runs, then the median of N timed runs, each synced
//! (the backend's queue drained) before the clock stops.

use std::time::Instant;

use burn::backend::wgpu::{Wgpu, WgpuDevice};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};

type B = Autodiff<Wgpu>;

struct Conv {
    n: usize,
    cin: usize,
    cout: usize,
    hw: usize,
    k: usize,
    dilation: usize,
}

impl Conv {
    fn label(&self) -> String {
        format!(
            "N{} {}->{} {}x{} {}x{} d{}",
            self.n, self.cin, self.cout, self.hw, self.hw, self.k, self.k, self.dilation
        )
    }

    /// 2 FLOPs per multiply-add of the forward pass.
    fn flops(&self) -> f64 {
        2.0 * (self.n * self.cout * self.hw * self.hw * self.cin * self.k * self.k) as f64
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time(iters: usize, device: &WgpuDevice, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
        B::sync(device).expect("sync");
    }
    median(
        (0..iters)
            .map(|_| {
                let t = Instant::now();
                f();
                B::sync(device).expect("sync");
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect(),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iters = args
        .iter()
        .position(|a| a == "--iters")
        .and_then(|i| args.get(i + 1))
        .map_or(10, |s| s.parse().expect("--iters N"));
    let device = WgpuDevice::default();
    let u = Distribution::Uniform(-1.0, 1.0);
    let mut rows = Vec::new();
    let mut report = |case: &str, shape: String, ms: f64, flops: f64| {
        let gflops = flops / ms / 1e6;
        println!("{case:<24} {shape:<28} {ms:>9.3} ms {gflops:>8.2} GFLOP/s");
        rows.push(serde_json::json!({"case": case, "shape": shape, "ms": ms, "gflops": gflops}));
    };
    for c in [
        Conv { n: 4, cin: 32, cout: 32, hw: 64, k: 3, dilation: 1 },
        Conv { n: 4, cin: 32, cout: 32, hw: 64, k: 3, dilation: 2 },
        Conv { n: 2, cin: 64, cout: 64, hw: 32, k: 3, dilation: 6 },
        Conv { n: 4, cin: 256, cout: 32, hw: 32, k: 1, dilation: 1 },
    ] {
        let x = Tensor::<B, 4>::random([c.n, c.cin, c.hw, c.hw], u, &device);
        let w = Tensor::<B, 4>::random([c.cout, c.cin, c.k, c.k], u, &device);
        let pad = (c.k - 1) / 2 * c.dilation;
        let opts = || ConvOptions::new([1, 1], [pad, pad], [c.dilation, c.dilation], 1);
        let fwd = time(iters, &device, || {
            let _ = conv2d(x.clone(), w.clone(), None, opts());
        });
        report("conv2d forward", c.label(), fwd, c.flops());
        let (xg, wg) = (x.clone().require_grad(), w.clone().require_grad());
        let both = time(iters, &device, || {
            let y = conv2d(xg.clone(), wg.clone(), None, opts());
            let grads = y.sum().backward();
            let _ = (xg.grad(&grads), wg.grad(&grads));
        });
        report("conv2d forward+backward", c.label(), both, 3.0 * c.flops());
    }
    for (m, k, n) in [(512, 512, 512), (1024, 256, 1024)] {
        let a = Tensor::<B, 2>::random([m, k], u, &device);
        let b = Tensor::<B, 2>::random([k, n], u, &device);
        let ms = time(iters, &device, || {
            let _ = a.clone().matmul(b.clone());
        });
        report("matmul", format!("{m}x{k} @ {k}x{n}"), ms, 2.0 * (m * k * n) as f64);
    }
    if let Some(i) = args.iter().position(|a| a == "--json") {
        let path = args.get(i + 1).expect("--json FILE");
        std::fs::write(path, serde_json::to_string_pretty(&rows).unwrap()).expect("write json");
    }
}
