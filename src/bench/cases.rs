//! The benchmark cases, per op family.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::{BenchCase, Run, Work};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::nn::init::uniform;
use crate::ops::kernels;
use crate::tensor::Tensor;

fn random(gpu: &Gpu, shape: &[usize]) -> Result<Tensor> {
    uniform(gpu, &mut StdRng::seed_from_u64(7), shape, 1.0)
}

fn matmul_case(m: usize, k: usize, n: usize) -> BenchCase {
    BenchCase {
        name: "matmul",
        shape: format!("{m}x{k} @ {k}x{n}"),
        work: Work::Flops(2.0 * (m * k * n) as f64),
        prepare: Box::new(move |gpu| {
            let (a, b) = (random(gpu, &[m, k])?, random(gpu, &[k, n])?);
            let run: Run = Box::new(move || kernels::matmul(&a, &b).map(drop));
            Ok(run)
        }),
    }
}

fn add_case(n: usize) -> BenchCase {
    BenchCase {
        name: "add",
        shape: format!("{n} + {n}"),
        work: Work::Bytes(12.0 * n as f64),
        prepare: Box::new(move |gpu| {
            let (a, b) = (random(gpu, &[n])?, random(gpu, &[n])?);
            let run: Run = Box::new(move || kernels::add(&a, &b).map(drop));
            Ok(run)
        }),
    }
}

fn softmax_case(rows: usize, n: usize) -> BenchCase {
    BenchCase {
        name: "softmax",
        shape: format!("[{rows}, {n}] dim=1"),
        work: Work::Bytes(8.0 * (rows * n) as f64),
        prepare: Box::new(move |gpu| {
            let x = random(gpu, &[rows, n])?;
            let run: Run = Box::new(move || kernels::softmax(&x, 1, false).map(drop));
            Ok(run)
        }),
    }
}

fn sum_case(rows: usize, n: usize) -> BenchCase {
    BenchCase {
        name: "sum",
        shape: format!("[{rows}, {n}] dim=1"),
        work: Work::Bytes(4.0 * (rows * n) as f64),
        prepare: Box::new(move |gpu| {
            let x = random(gpu, &[rows, n])?;
            let run: Run =
                Box::new(move || kernels::reduce_sum("sum", &x, &[1], false, 1.0).map(drop));
            Ok(run)
        }),
    }
}

/// Every case, in table order.
pub fn all() -> Vec<BenchCase> {
    vec![
        matmul_case(512, 512, 512),
        matmul_case(1024, 256, 1024),
        add_case(1 << 22),
        softmax_case(4096, 1000),
        sum_case(256, 16384),
    ]
}
