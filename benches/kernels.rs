//! Criterion benches over the same cases as `wgseg bench`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgseg::bench::{all, Work};
use wgseg::Gpu;

fn kernels(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU or lavapipe");
    let mut group = c.benchmark_group("kernels");
    group.sample_size(10);
    for case in all() {
        let mut run = (case.prepare)(&gpu).expect("prepare");
        match case.work {
            // Criterion reports element throughput; one "element" is one FLOP here.
            Work::Flops(f) => group.throughput(Throughput::Elements(f as u64)),
            Work::Bytes(b) => group.throughput(Throughput::Bytes(b as u64)),
        };
        group.bench_function(format!("{} {}", case.name, case.shape), |b| {
            b.iter(|| {
                run().expect("run");
                gpu.sync().expect("sync");
            })
        });
    }
    group.finish();
}

criterion_group!(benches, kernels);
criterion_main!(benches);
