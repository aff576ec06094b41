//! Every registered op against its CPU f64 reference and finite differences.

use wgseg::gradcheck::{self, ops};
use wgseg::op_table;

#[test]
fn every_op_has_a_gradient_check() {
    for op in op_table::all() {
        assert!(
            ops::find(op.name).is_some(),
            "op {} has no gradient check",
            op.name
        );
    }
}

#[test]
fn every_op_passes_gradcheck() {
    let gpu = wgseg::Gpu::shared().unwrap();
    for seed in [1, 2] {
        let reports = gradcheck::run(&gpu, &[], seed).unwrap();
        let failed: Vec<String> = reports
            .iter()
            .filter(|r| !r.passed())
            .map(|r| {
                format!(
                    "{} {} fwd {:e} grads {:?}",
                    r.op, r.label, r.forward, r.grads
                )
            })
            .collect();
        assert!(failed.is_empty(), "seed {seed}: {failed:#?}");
    }
}
