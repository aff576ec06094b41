//! `wgseg train` end to end at a tiny size: the run folder, determinism, resume, and
//! the errors a user meets first.

mod common;

use std::path::{Path, PathBuf};

use common::{infer_test_images, records, report_json, run, scratch, stderr, stdout, wgseg};

fn tiny(out: &Path, extra: &[&str]) -> Vec<String> {
    common::tiny_quickstart(out, extra)
}

fn only_run_dir(out: &Path) -> PathBuf {
    common::only_run_dir(out, "quickstart")
}

#[test]
fn quickstart_writes_a_complete_run_folder_and_is_deterministic() {
    let a = scratch("exp_a");
    let o = run(&tiny(&a, &[]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("start ") && s.contains("trained") && s.contains("linear probe"),
        "{s}"
    );
    // Each comparison row once: the start is printed as it is measured, not again.
    for row in ["start ", "backbone ", "trained "] {
        assert_eq!(
            s.lines().filter(|l| l.starts_with(row)).count(),
            1,
            "{row}: {s}"
        );
    }
    let dir = only_run_dir(&a);
    for f in [
        "config.yaml",
        "metrics.jsonl",
        "checkpoint.safetensors",
        "loss_curve.png",
        "report.json",
        "report.md",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let pictures: Vec<_> = std::fs::read_dir(dir.join("pictures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pictures.len(), 2);
    // 32-px images are enlarged 8 times: input | overlay | prediction, then the legend.
    let img = image::open(&pictures[0]).unwrap();
    assert_eq!((img.width(), img.height()), (3 * 256 + 150, 256));
    // The contact sheet: both overlays side by side at 128 px, then the legend.
    let sheet = image::open(dir.join("contact_sheet.png")).unwrap();
    assert_eq!((sheet.width(), sheet.height()), (2 * 128 + 150, 128));
    let recs = records(&dir);
    assert_eq!(recs.iter().filter(|r| r["kind"] == "train").count(), 4);
    let report = common::report_json(&dir);
    assert!(report["trained"]["miou_mean"].as_f64().unwrap() > 0.0);
    // The backbone's own features are scored once, before training.
    assert!(report["backbone"]["miou_mean"].as_f64().unwrap() > 0.0);
    assert_eq!(recs.iter().filter(|r| r["model"] == "backbone").count(), 1);
    assert!(s.contains("backbone"), "{s}");
    assert!(
        report["probe_trained"]["miou"].is_number() && report["probe_start"]["miou"].is_number()
    );
    // eval re-scores the checkpoint; infer draws predictions for new images.
    let o = wgseg(&["eval", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.join("eval.json").is_file() && stdout(&o).contains("k-means mIoU"));
    let pics = a.join("infer_out");
    let o = infer_test_images(&dir, &pics);
    assert!(o.status.success(), "{}", stderr(&o));
    for name in ["chelsea.png", "coffee.png"] {
        // input | overlay | prediction at the input's own size, then the legend.
        let input = image::open(format!("tests/data/images/{name}")).unwrap();
        let img = image::open(pics.join(name)).unwrap();
        assert_eq!(img.width(), 3 * input.width() + 150, "{name}");
        assert_eq!(img.height(), input.height(), "{name}");
    }
    // A missing or broken input is one line and leaves no output folder.
    std::fs::write(a.join("broken.png"), b"not a png").unwrap();
    for input in [a.join("missing.png"), a.join("broken.png")] {
        let bad_out = a.join("infer_bad");
        let args = [
            "infer",
            dir.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            bad_out.to_str().unwrap(),
        ];
        let o = wgseg(&args, &[]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(input.to_str().unwrap()),
            "{}",
            stderr(&o)
        );
        assert!(!bad_out.exists(), "{input:?} left {bad_out:?}");
    }
    // The resolved config runs again and gives the same numbers.
    let b = scratch("exp_b");
    assert!(run(&tiny(&b, &[])).status.success());
    assert_eq!(
        recs,
        records(&only_run_dir(&b)),
        "same seed, same adapter, same metrics"
    );
}

#[test]
fn resume_continues_to_the_same_final_metrics() {
    let full = scratch("exp_full");
    assert!(run(&tiny(&full, &[])).status.success());
    let split = scratch("exp_split");
    let o = run(&tiny(&split, &["--stop-at", "2"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("--resume"));
    let dir = only_run_dir(&split);
    let o = wgseg(&["train", "--resume", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(records(&only_run_dir(&full)), records(&dir));
}

#[test]
fn seeds_train_once_per_seed_resume_inside_the_second_and_report_the_spread() {
    let seeds = ["--set", "seeds=[0, 5]"];
    let full = scratch("exp_seeds_full");
    let o = run(&tiny(&full, &seeds));
    assert!(o.status.success(), "{}", stderr(&o));
    let root = only_run_dir(&full);
    for seed in ["0", "5"] {
        assert!(root.join("seeds").join(seed).join("report.json").is_file());
    }
    // Seed 0's run is the plain run with seed 0.
    let plain = scratch("exp_seeds_plain");
    assert!(run(&tiny(&plain, &[])).status.success());
    assert_eq!(
        records(&root.join("seeds/0")),
        records(&only_run_dir(&plain))
    );
    let report = report_json(&root);
    let arm = &report["arms"][0];
    assert_eq!(report["seeds"], serde_json::json!([0, 5]));
    for row in ["start", "trained"] {
        let per_seed = arm[row]["per_seed"].as_array().unwrap();
        assert_eq!(per_seed.len(), 2, "{row}");
        let (a, b) = (per_seed[0].as_f64().unwrap(), per_seed[1].as_f64().unwrap());
        let mean = arm[row]["miou_mean"].as_f64().unwrap();
        let std = arm[row]["miou_std"].as_f64().unwrap();
        assert!((mean - (a + b) / 2.0).abs() < 1e-12, "{row}");
        assert!((std - (a - b).abs() / 2.0).abs() < 1e-12, "{row}");
    }
    assert!(stdout(&o).contains("over seeds [0, 5]"), "{}", stdout(&o));
    // Stopped at step 6 of 8: inside the second seed's run, which resumes there.
    let split = scratch("exp_seeds_split");
    let args = tiny(&split, &[seeds[0], seeds[1], "--stop-at", "6"]);
    let dir = common::stop_then_resume(&split, "quickstart", &args);
    for seed in ["seeds/0", "seeds/5"] {
        assert_eq!(
            records(&root.join(seed)),
            records(&dir.join(seed)),
            "{seed}"
        );
    }
    let resumed = report_json(&dir);
    for row in ["start", "trained"] {
        assert_eq!(resumed["arms"][0][row], arm[row], "{row}");
    }
    let o = run(&tiny(&full, &["--set", "seeds=[1, 1]"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("seeds: seed 1 is given twice"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn kmeans_can_take_the_foreground_from_the_saliency_head() {
    let out = scratch("exp_predicted");
    let o = run(&tiny(&out, &["--set", "eval.kmeans.saliency=predicted"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = only_run_dir(&out);
    let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(config.contains("saliency: predicted"), "{config}");
    let report = report_json(&dir);
    for model in ["start", "trained"] {
        let miou = report[model]["miou_mean"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&miou), "{model}: {miou}");
    }
    let o = run(&tiny(&out, &["--set", "eval.kmeans.saliency=guess"]));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("eval.kmeans.saliency") && e.contains("`predicted` or `dataset`"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
}

#[test]
fn dry_run_prints_the_plan_without_training() {
    let out = scratch("exp_dry");
    let o = run(&tiny(&out, &["--dry-run"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("parameters") && s.contains("GPU memory") && s.contains("steps"),
        "{s}"
    );
    assert!(
        !out.join("quickstart").exists(),
        "a dry run writes no run folder"
    );
}

#[test]
fn bad_experiments_fail_with_one_clear_line() {
    let dir = scratch("exp_bad");
    let yaml = std::fs::read_to_string("experiments/quickstart.yaml").unwrap();
    let typo = dir.join("typo.yaml");
    std::fs::write(&typo, yaml.replace("  batch_size: 8", "  batchsize: 8")).unwrap();
    let o = wgseg(&["train", typo.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("typo.yaml:")
            && e.contains("data.batchsize")
            && e.contains("did you mean `batch_size`?"),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    // Missing data folder.
    let voc = dir.join("voc.yaml");
    let with_voc = yaml.replace(
        "    kind: garments         # built in: Fashion-MNIST garments, class = garment category",
        "    kind: voc\n    root: /nonexistent/VOC2012\n    num_classes: 21",
    );
    let with_voc: String = with_voc
        .lines()
        .filter(|l| {
            ![
                "train:",
                "val:",
                "size:",
                "max_objects:",
                "style:",
                "garment_texture:",
                "background_texture:",
                "seed: 0",
            ]
            .iter()
            .any(|k| l.trim_start().starts_with(k) && l.starts_with("    "))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&voc, with_voc).unwrap();
    let o = wgseg(&["train", voc.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("/nonexistent/VOC2012"),
        "{}",
        stderr(&o)
    );
    // A pretrained checkpoint that does not fit the backbone.
    let o = run(&tiny(
        &dir,
        &[
            "--set",
            "model.pretrained=assets/pretrained/mobilenet_v2_imagenet.safetensors",
            "--dry-run",
        ],
    ));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("model.pretrained")
            && e.contains(
                "features.0.0.weight has shape [32, 3, 3, 3], the model expects [8, 3, 3, 3]"
            ),
        "{e}"
    );
    // A garment class Fashion-MNIST does not have.
    let o = run(&tiny(
        &dir,
        &["--set", "data.source.classes=[t_shirt, sock]", "--dry-run"],
    ));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("data.source.classes") && e.contains("\"sock\""),
        "{e}"
    );
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    // --resume of something that is not a run.
    let o = wgseg(&["train", "--resume", dir.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("config.yaml"), "{}", stderr(&o));
}

#[test]
fn profile_shows_where_the_step_time_goes_and_writes_nothing() {
    let out = scratch("exp_profile");
    let mut args = tiny(&out, &["--steps", "1", "--top", "60"]);
    args[0] = "profile".into();
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(
        s.contains("dispatches and copies") && s.contains("op family"),
        "{s}"
    );
    // The convolutions of the network are timed, by family and by specialisation.
    assert!(s.lines().any(|l| l.starts_with("conv2d ")), "{s}");
    assert!(s.contains("conv2d:forward[CB="), "{s}");
    let listed = s
        .lines()
        .skip_while(|l| !l.starts_with("kernel (shader:entry)"))
        .skip(1)
        .take_while(|l| !l.is_empty() && !l.starts_with('('))
        .count();
    // At most --top kernels, and "(N more)" only when some were left out.
    let more = s
        .lines()
        .any(|l| l.starts_with('(') && l.ends_with("more)"));
    assert!(listed <= 60 && (listed == 60) == more, "{s}");
    assert!(
        !out.join("quickstart").exists(),
        "a profile writes no run folder"
    );
    let e = stderr(&run(&{
        let mut a = args.clone();
        a[args.len() - 3] = "0".into();
        a
    }));
    assert!(e.contains("--steps must be at least 1"), "{e}");
}

#[test]
fn resume_of_a_finished_run_reads_its_checkpoint_back() {
    let out = scratch("exp_finished_corrupt");
    assert!(run(&tiny(&out, &[])).status.success());
    let dir = only_run_dir(&out);
    let resume = || wgseg(&["train", "--resume", dir.to_str().unwrap()], &[]);
    let o = resume();
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&checkpoint).unwrap();
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 2]).unwrap();
    let o = resume();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("checkpoint.safetensors"), "{e}");
}
