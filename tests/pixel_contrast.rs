//! experiments/pixel_contrast.yaml end to end at a tiny size: the method and its
//! cross-entropy baseline in one run folder, determinism, resume inside either arm,
//! and the errors of a bad key.

mod common;

use std::path::{Path, PathBuf};

use common::{
    infer_test_images, records, run, scratch, stderr, stdout, stop_then_resume, train_args, wgseg,
};

/// The experiment shrunk to seconds: 32-px images (2x2 features), a thin network,
/// 4 steps of which the last 3 use the contrast.
fn tiny(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut sets = vec!["data.source.train=16", "data.source.val=8"];
    sets.extend(common::TINY_NETWORK);
    sets.extend([
        "method.proj_dim=8",
        "method.max_views=2",
        "method.memory_size=6",
        "method.warmup_iters=1",
        "schedule.iters=4",
        "output.log_every=1",
        "output.checkpoint_every=2",
        "output.pictures=2",
    ]);
    train_args("experiments/pixel_contrast.yaml", out, &sets, extra)
}

fn only_run_dir(out: &Path) -> PathBuf {
    common::only_run_dir(out, "pixel_contrast")
}

/// The metrics of the method and of its baseline.
fn both_arms(run: &Path) -> [Vec<serde_json::Value>; 2] {
    [records(run), records(&run.join("baselines/ce_only"))]
}

#[test]
fn method_and_baseline_share_a_run_and_are_deterministic() {
    let a = scratch("pc_a");
    let o = run(&tiny(&a, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("baseline        ce_only"),
        "{}",
        stdout(&o)
    );
    let dir = only_run_dir(&a);
    for arm in [dir.clone(), dir.join("baselines/ce_only")] {
        for f in [
            "config.yaml",
            "metrics.jsonl",
            "checkpoint.safetensors",
            "report.json",
            "report.md",
        ] {
            assert!(arm.join(f).is_file(), "{} missing", arm.join(f).display());
        }
    }
    let [method, baseline] = both_arms(&dir);
    let train = |recs: &[serde_json::Value]| -> Vec<f64> {
        recs.iter()
            .filter(|r| r["kind"] == "train")
            .map(|r| r["loss_contrast"].as_f64().unwrap())
            .collect()
    };
    // Warm-up step 0 is cross-entropy alone; the contrast is on from step 1.
    let contrast = train(&method);
    assert_eq!(contrast.len(), 4);
    assert_eq!(contrast[0], 0.0);
    assert!(contrast[1..].iter().all(|&c| c > 0.0), "{contrast:?}");
    assert!(train(&baseline).iter().all(|&c| c == 0.0));
    // The same initialisation and batches: the first cross-entropy agrees.
    assert_eq!(method[1]["loss_ce"], baseline[1]["loss_ce"]);
    let report = common::report_json(&dir);
    assert!(report["trained"]["miou"].is_number(), "{report}");
    let b = &report["baselines"][0];
    assert_eq!(b["name"], "ce_only");
    assert_eq!(b["overrides"][0], "method.contrast_weight=0");
    assert!(b["report"]["trained"]["miou"].is_number(), "{report}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| ce_only | method.contrast_weight=0 |"),
        "{md}"
    );
    // eval re-scores the checkpoint by argmax; infer draws class maps.
    let o = wgseg(&["eval", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("mIoU"), "{}", stdout(&o));
    let pics = a.join("infer_out");
    let o = infer_test_images(&dir, &pics);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(pics.join("coffee.png").is_file());
    let b = scratch("pc_b");
    assert!(run(&tiny(&b, &[])).status.success());
    assert_eq!(both_arms(&dir), both_arms(&only_run_dir(&b)));
}

#[test]
fn resume_continues_whichever_arm_is_unfinished() {
    let full = scratch("pc_full");
    assert!(run(&tiny(&full, &[])).status.success());
    let want = both_arms(&only_run_dir(&full));
    // Stopped inside the method (step 2 of 4), then inside the baseline (step 6 = its
    // step 2): each resume continues to the same metrics as the uninterrupted run.
    for stop in ["2", "6"] {
        let split = scratch(&format!("pc_split_{stop}"));
        let dir = stop_then_resume(
            &split,
            "pixel_contrast",
            &tiny(&split, &["--stop-at", stop]),
        );
        assert_eq!(both_arms(&dir), want, "stopped at {stop}");
    }
}

#[test]
fn dry_run_lists_the_baselines() {
    let out = scratch("pc_dry");
    let o = run(&tiny(&out, &["--dry-run"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("parameters") && s.contains("baseline        ce_only: method.contrast_weight=0"),
        "{s}"
    );
    assert!(!out.join("pixel_contrast").exists());
}

#[test]
fn bad_keys_fail_with_one_clear_line() {
    let out = scratch("pc_bad");
    let cases = [
        (
            "method.contrast_wieght=0.2",
            &[
                "--set method.contrast_wieght=0.2",
                "did you mean `contrast_weight`?",
            ][..],
        ),
        (
            "baselines={ce: [method.temprature=1]}",
            &[
                "baselines.ce: --set method.temprature=1",
                "did you mean `temperature`?",
            ][..],
        ),
        (
            "baselines={ce: [seed=3]}",
            &["baselines.ce: must keep the experiment's seed"][..],
        ),
        ("method.temperature=0", &["method.temperature: "][..]),
        (
            "baselines={../x: []}",
            &["baselines.../x: \"../x\" must be one folder name"][..],
        ),
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
