//! experiments/translation_coding.yaml end to end at a tiny size: its three stages
//! in one run with an evaluation after each, resume inside a stage, and the errors
//! of a bad stage or optimiser key.

mod common;

use std::path::{Path, PathBuf};

use common::{records, run, scratch, stderr, stdout, train_args};

/// The experiment shrunk to seconds: 32-px images (4x4 features), a thin network
/// and discriminator, 2 steps per stage.
fn tiny(out: &Path, extra: &[&str]) -> Vec<String> {
    let sets = [
        "data.source.train=16",
        "data.source.val=4",
        "data.source.size=32",
        "data.target.train=16",
        "data.target.val=8",
        "data.target.size=32",
        "data.image_size=32",
        "data.batch_size=4",
        "model.width=0.125",
        "model.pretrained=null",
        "model.head_channels=8",
        "method.nce_dim=8",
        "method.disc_channels=4",
        "method.disc_layers=2",
        "method.pseudo_threshold=0.3",
        "schedule.iters=6",
        "stages.0.iters=2",
        "stages.1.iters=2",
        "stages.2.iters=2",
        "output.log_every=1",
        "output.checkpoint_every=1",
        "output.pictures=1",
    ];
    train_args("experiments/translation_coding.yaml", out, &sets, extra)
}

fn only_run_dir(out: &Path) -> PathBuf {
    common::only_run_dir(out, "translation_coding")
}

/// The value of `key` in the train records, by stage.
fn by_stage(recs: &[serde_json::Value], key: &str) -> Vec<(String, f64)> {
    recs.iter()
        .filter(|r| r["kind"] == "train")
        .map(|r| {
            (
                r["stage"].as_str().unwrap().to_string(),
                r[key].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_three_stages_run_in_one_run_with_an_evaluation_after_each() {
    let out = scratch("tc_stages");
    // A first-stage rate other than the later stages' 0.01, to see each stage's own.
    let o = run(&tiny(&out, &["--set", "optim.lr=0.05"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    // Each stage but the last is scored as it ends; the last is the trained network.
    for stage in ["pretrain", "transfer"] {
        assert!(s.contains(&format!("stage {stage}")), "{s}");
    }
    assert!(s.contains("trained "), "{s}");
    let dir = only_run_dir(&out);
    let recs = records(&dir);
    let on =
        |key: &str| -> Vec<bool> { by_stage(&recs, key).iter().map(|(_, v)| *v > 0.0).collect() };
    let stages: Vec<String> = by_stage(&recs, "loss")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(
        stages,
        [
            "pretrain",
            "pretrain",
            "transfer",
            "transfer",
            "self_train",
            "self_train"
        ]
    );
    // Each stage trains what its weights switch on.
    assert_eq!(on("loss_ce"), [true; 6]);
    assert_eq!(on("loss_nce"), [false, false, true, true, true, true]);
    assert_eq!(on("loss_adv"), [false, false, true, true, false, false]);
    assert_eq!(on("loss_disc"), [false, false, true, true, false, false]);
    assert_eq!(on("loss_pseudo"), [false, false, false, false, true, true]);
    // The stage learning rates: poly from each stage's own base rate.
    let lr = by_stage(&recs, "lr");
    assert_eq!((lr[0].1, lr[2].1, lr[4].1), (0.05, 0.01, 0.01));
    let evals: Vec<(u64, &str)> = recs
        .iter()
        .filter(|r| r["kind"] == "eval" && r["model"] == "trained")
        .map(|r| (r["step"].as_u64().unwrap(), r["stage"].as_str().unwrap()))
        .collect();
    assert_eq!(evals, [(2, "pretrain"), (4, "transfer"), (6, "self_train")]);
    let report = common::report_json(&dir);
    assert_eq!(report["target_domain"], true);
    assert_eq!(report["stages"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["stages"][1]["stage"], "transfer");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("## After each stage") && md.contains("| self_train | 6 |"),
        "{md}"
    );
}

#[test]
fn resume_inside_a_stage_gives_the_uninterrupted_run() {
    let full = scratch("tc_full");
    assert!(run(&tiny(&full, &[])).status.success());
    let want = records(&only_run_dir(&full));
    // Step 3 is inside the transfer stage, whose discriminator and its optimiser
    // must carry over exactly.
    let split = scratch("tc_split");
    let o = run(&tiny(&split, &["--stop-at", "3"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("--resume"), "{}", stdout(&o));
    let dir = only_run_dir(&split);
    assert!(records(&dir)
        .iter()
        .all(|r| r["step"].as_u64().unwrap() <= 3));
    let o = run(&["train".into(), "--resume".into(), dir.display().to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(records(&dir), want);
}

#[test]
fn bad_stage_and_optimiser_keys_fail_with_one_clear_line() {
    let out = scratch("tc_bad");
    let cases = [
        (
            "stages.1.method.adv_wieght=1",
            &[
                "stages.transfer: ",
                "adv_wieght",
                "did you mean `adv_weight`?",
            ][..],
        ),
        (
            "stages.0.iterz=3",
            &["stages[0]", "iterz", "did you mean `iters`?"][..],
        ),
        (
            "stages.2.optim={kind: adam}",
            &["stages.self_train.optim: kind and frozen stay the experiment's"][..],
        ),
        (
            "stages.2.iters=3",
            &["schedule.iters: 6 but the stages add up to 7 steps"][..],
        ),
        (
            "stages.1.optimizers={generator: {lr: 1}}",
            &["stages.transfer: optimizers.generator: the experiment has no optimiser"][..],
        ),
        (
            "optimizers.generator={kind: sgd, lr: 1}",
            &["optimizers.generator: the method trains no parameter set"][..],
        ),
        ("stages.7.iters=1", &["stages is a list of 3"][..]),
    ];
    for (set, want) in cases {
        let o = run(&tiny(&out, &["--set", set, "--dry-run"]));
        assert_eq!(o.status.code(), Some(2), "{set}: {}", stderr(&o));
        let e = stderr(&o);
        for w in want {
            assert!(e.contains(w), "{set}: {e}");
        }
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    }
}
