//! experiments/bidir_proto.yaml end to end at a tiny size: the method and its
//! source-only baseline in one run folder, both scored on the target's val split,
//! pseudo-label accuracy logged and reported, determinism, resume inside either arm,
//! and the errors of a bad key or a missing target domain.

mod common;

use std::path::{Path, PathBuf};

use common::{records, run, scratch, stderr, stdout, stop_then_resume, train_args};

/// The experiment shrunk to seconds: 32-px images, a thin untrained network, 4 steps of
/// which the last 3 adapt, with the target cross-entropy on so every term runs. The
/// target has 20 training images, the source 16, so the target's val images (ids from
/// 000020) differ from the source's (000016).
fn tiny(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut sets = vec![
        "data.source.train=16",
        "data.source.val=8",
        "data.target.train=20",
        "data.target.val=8",
        "data.target.size=32",
    ];
    sets.extend(common::TINY_NETWORK);
    sets.extend([
        "method.target_ce_weight=0.3",
        "method.warmup_iters=1",
        "schedule.iters=4",
        "output.log_every=1",
        "output.checkpoint_every=2",
        "output.pictures=2",
    ]);
    train_args("experiments/bidir_proto.yaml", out, &sets, extra)
}

fn only_run_dir(out: &Path) -> PathBuf {
    common::only_run_dir(out, "bidir_proto")
}

/// The metrics of the method and of its baseline.
fn both_arms(run: &Path) -> [Vec<serde_json::Value>; 2] {
    [records(run), records(&run.join("baselines/source_only"))]
}

fn train_records(recs: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    recs.iter().filter(|r| r["kind"] == "train").collect()
}

#[test]
fn method_and_source_only_share_a_run_and_are_deterministic() {
    let a = scratch("bp_a");
    let o = run(&tiny(&a, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("baseline        source_only") && out.contains("pseudo labels"),
        "{out}"
    );
    let dir = only_run_dir(&a);
    for arm in [dir.clone(), dir.join("baselines/source_only")] {
        for f in [
            "config.yaml",
            "metrics.jsonl",
            "checkpoint.safetensors",
            "report.json",
            "report.md",
            // Pictures of the target's val images: evaluation is on the target.
            "pictures/000020.png",
        ] {
            assert!(arm.join(f).is_file(), "{} missing", arm.join(f).display());
        }
    }
    let [method, baseline] = both_arms(&dir);
    let (m, b) = (train_records(&method), train_records(&baseline));
    assert_eq!((m.len(), b.len()), (4, 4));
    // Warm-up step 1 is source cross-entropy alone on the same initialisation and
    // batches as the baseline; pseudo labels are made and scored from step 2 on.
    assert_eq!(m[0]["loss_ce"], b[0]["loss_ce"]);
    assert!(m[0].get("pl_coverage").is_none());
    for r in &m[1..] {
        let acc = r["pl_accuracy"].as_f64().unwrap();
        let cov = r["pl_coverage"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc) && cov > 0.0 && cov <= 1.0, "{r}");
        assert!(r["loss_t2s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["loss_s2t"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(b.iter().all(|r| r.get("pl_coverage").is_none()));
    let report = common::report_json(&dir);
    assert!(report["trained"]["miou"].is_number(), "{report}");
    assert_eq!(report["pseudo_labels"].as_array().unwrap().len(), 3);
    let base = &report["baselines"][0];
    assert_eq!(base["name"], "source_only");
    assert!(base["report"]["trained"]["miou"].is_number(), "{report}");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("| source_only | method.contrast_weight=0, method.target_ce_weight=0, method.entropy_weight=0 |")
            && md.contains("## Pseudo labels")
            && md.contains("| 4 |"),
        "{md}"
    );
    let again = scratch("bp_b");
    assert!(run(&tiny(&again, &[])).status.success());
    assert_eq!(both_arms(&dir), both_arms(&only_run_dir(&again)));
}

#[test]
fn resume_continues_whichever_arm_is_unfinished() {
    let full = scratch("bp_full");
    assert!(run(&tiny(&full, &[])).status.success());
    let want = both_arms(&only_run_dir(&full));
    // Stopped inside the method (step 2 of 4: prototypes and bias in the
    // checkpoint), then inside the baseline (step 6 = its step 2).
    for stop in ["2", "6"] {
        let split = scratch(&format!("bp_split_{stop}"));
        let dir = stop_then_resume(&split, "bidir_proto", &tiny(&split, &["--stop-at", stop]));
        assert_eq!(both_arms(&dir), want, "stopped at {stop}");
    }
}

#[test]
fn bad_keys_and_a_missing_target_fail_with_one_clear_line() {
    let out = scratch("bp_bad");
    let cases = [
        (
            "method.contrast_wieght=0.2",
            &[
                "--set method.contrast_wieght=0.2",
                "did you mean `contrast_weight`?",
            ][..],
        ),
        (
            "data.target.styel=b",
            &["--set data.target.styel=b", "did you mean `style`?"][..],
        ),
        (
            "data.target=null",
            &["data.target: missing: bidir_proto adapts to an unlabelled target domain"][..],
        ),
        (
            "data.target={kind: voc, root: x, num_classes: 21}",
            &["data.target: has classes"][..],
        ),
        (
            "method.threshold=2",
            &["method.threshold: must be in [0, 1]"][..],
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
    assert!(!out.join("bidir_proto").exists());
}
