//! Bad experiment values as a hostile new user types them: each is refused before
//! anything is written, with exit code 2 and one line that names the key, never a
//! panic. Each case runs the real `wgseg train` (not --dry-run) on the tiny
//! quickstart, so a value that slipped through would train and leave a run folder.

mod common;

use std::process::Output;

use common::{scratch, stderr, tiny_quickstart};

/// (override, what the one error line must contain)
const CASES: &[(&str, &str)] = &[
    (
        "data.image_size=65536",
        "data.image_size: 65536 must lie in 16..=4096",
    ),
    (
        "data.source.size=0",
        "data.source.size: 0 must lie in 16..=4096",
    ),
    ("data.source.val=0", "data.source.val: must be at least 1"),
    (
        "augment.crop_scale=[1.0, 0.3]",
        "augment.crop_scale: [1, 0.3] must be [low, high]",
    ),
    ("augment.crop_scale=[-1, 0]", "augment.crop_scale: [-1, 0]"),
    ("augment.hflip=2", "augment.hflip: 2 is not a probability"),
    (
        "augment.grayscale=-0.1",
        "augment.grayscale: -0.1 is not a probability",
    ),
    (
        "augment.color_jitter.hue=0.7",
        "augment.color_jitter.hue: 0.7 must lie in [0, 0.5]",
    ),
    (
        "augment.color_jitter.brightness=.nan",
        "augment.color_jitter.brightness: NaN",
    ),
    ("optim.lr=.nan", "optim.lr: NaN must be a finite number > 0"),
    ("optim.lr=.inf", "optim.lr: inf must be a finite number > 0"),
    (
        "optim.momentum=.nan",
        "optim.momentum: NaN must lie in [0, 1)",
    ),
    (
        "optim.weight_decay=-1",
        "optim.weight_decay: -1 must be a finite number >= 0",
    ),
    (
        "eval.kmeans.seeds=[]",
        "eval.kmeans.seeds: must name at least one seed",
    ),
    (
        "eval.kmeans.clusters=0",
        "eval.kmeans.clusters: must be at least 1",
    ),
    (
        "eval.kmeans.clusters=100000",
        "100000 clusters need at least as many validation images, there are 12",
    ),
    (
        "eval.kmeans.pca_dim=64",
        "eval.kmeans.pca_dim: 64 is more than the embedding's 8",
    ),
    ("eval.linear_probe.lr=.inf", "eval.linear_probe.lr: inf"),
    (
        "data.source={kind: voc, root: /nonexistent, num_classes: 1}",
        "data.source.num_classes: 1 must be at least 2",
    ),
    (
        "data.source={kind: voc, root: /nonexistent, num_classes: 0}",
        "data.source.num_classes: 0 must be at least 2",
    ),
    (
        "data.source={kind: voc, root: /nonexistent/VOC, num_classes: 21}",
        "/nonexistent/VOC/ImageSets/Segmentation/train.txt",
    ),
    (
        "model.pretrained=assets/pretrained/mobilenet_v2_imagenet.safetensors",
        "features.0.0.weight has shape [32, 3, 3, 3], the model expects [8, 3, 3, 3]",
    ),
    (
        "device.backend=bogus",
        "device.backend: \"bogus\" is not a backend",
    ),
    ("name=../../x", "name: \"../../x\" must be one folder name"),
    (
        "name=/tmp/elsewhere",
        "name: \"/tmp/elsewhere\" must be one folder name",
    ),
    ("name=..", "name: \"..\" must be one folder name"),
    ("name=''", "name: \"\" must be one folder name"),
    (
        "output.on_nonfinite=sometimes",
        "output.on_nonfinite: unknown variant `sometimes`, expected `stop` or `skip`",
    ),
    (
        "device.timeout_s=0",
        "device.timeout_s: 0 must be a finite number > 0",
    ),
];

/// Exit code 2, no panic, and one line of stderr that contains `want`.
fn refused_in_one_line(o: &Output, want: &str, case: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{case}: {e}");
    assert!(!e.contains("panicked"), "{case}: {e}");
    assert_eq!(e.trim().lines().count(), 1, "{case}: {e}");
    assert!(e.contains(want), "{case}: wanted {want:?} in {e}");
}

#[test]
fn bad_values_are_refused_in_one_line_naming_the_key_before_anything_is_written() {
    for (i, (set, want)) in CASES.iter().enumerate() {
        let out = scratch(&format!("bad_input_{i}"));
        let o = common::run(&tiny_quickstart(&out, &["--set", set]));
        refused_in_one_line(&o, want, set);
        let written: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
        assert!(written.is_empty(), "{set}: wrote {written:?}");
    }
}

/// (arguments, environment, what the one error line must contain)
type CliCase = (Vec<String>, Vec<(&'static str, &'static str)>, &'static str);

#[test]
fn bad_command_line_values_are_refused_in_one_line_and_write_nothing() {
    let out = scratch("bad_input_cli");
    let at = |name: &str| out.join(name).display().to_string();
    let cases: Vec<CliCase> = vec![
        (
            vec![
                "data".into(),
                "synth".into(),
                "--size".into(),
                "100000".into(),
                "--out".into(),
                at("big"),
            ],
            vec![],
            "--size in 8..=4096",
        ),
        (
            vec![
                "data".into(),
                "synth".into(),
                "--texture-contrast".into(),
                "nan".into(),
                "--out".into(),
                at("nan"),
            ],
            vec![],
            "--texture-contrast NaN must lie in [0, 1]",
        ),
        (
            vec![
                "data".into(),
                "garments".into(),
                "--background-texture".into(),
                "2".into(),
                "--out".into(),
                at("bg"),
            ],
            vec![],
            "background_texture 2 must lie in [0, 1]",
        ),
        (
            vec![
                "bench".into(),
                "matmul".into(),
                "--iters".into(),
                "0".into(),
            ],
            vec![],
            "--iters must be at least 1",
        ),
        (
            vec!["shaders".into(), "check".into(), at("missing")],
            vec![],
            "shaders check: not a directory",
        ),
        (
            vec!["info".into()],
            vec![("WGPU_BACKEND", "bogus")],
            "WGPU_BACKEND: \"bogus\" is not a backend (vulkan, metal, dx12, gl)",
        ),
        (
            vec!["shaders".into(), "check".into()],
            vec![("WGSEG_SHADER_DIR", "/nonexistent/shaders")],
            "WGSEG_SHADER_DIR is not a directory",
        ),
    ];
    for (args, env, want) in &cases {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = common::wgseg(&refs, env);
        refused_in_one_line(&o, want, &format!("{args:?}"));
    }
    let written: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(written.is_empty(), "wrote {written:?}");
}

#[test]
fn a_truncated_image_or_an_unknown_label_in_a_voc_folder_is_named_before_a_run_folder_exists() {
    let root = scratch("bad_input_voc");
    let voc = root.join("voc");
    let o = common::wgseg(
        &[
            "data",
            "garments",
            "--out",
            voc.to_str().unwrap(),
            "--train",
            "8",
            "--val",
            "4",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let val_id = std::fs::read_to_string(voc.join("ImageSets/Segmentation/val.txt")).unwrap();
    let val_id = val_id.lines().last().unwrap().to_string();
    let jpg = voc.join("JPEGImages").join(format!("{val_id}.jpg"));
    let mask = voc.join("SegmentationClass").join(format!("{val_id}.png"));
    let (w, h, mut labels) = wgseg::data::voc::read_indices(&mask).unwrap();
    let whole = std::fs::read(&jpg).unwrap();
    let source = format!(
        "data.source={{kind: voc, root: {}, num_classes: 6}}",
        voc.display()
    );
    let out = root.join("runs");
    for (case, want) in [
        ("truncated", jpg.display().to_string()),
        ("label", "label 9 at pixel 5".into()),
    ] {
        if case == "truncated" {
            std::fs::write(&jpg, &whole[..whole.len() / 3]).unwrap();
        } else {
            std::fs::write(&jpg, &whole).unwrap();
            labels[5] = 9;
            wgseg::data::voc::write_indices(&mask, w, h, &labels).unwrap();
        }
        for dry in [true, false] {
            let mut extra = vec!["--set", &source];
            if dry {
                extra.push("--dry-run");
            }
            let o = common::run(&tiny_quickstart(&out, &extra));
            refused_in_one_line(&o, &want, case);
            assert!(!out.exists(), "{case}: a run folder was made");
        }
    }
}

#[test]
fn a_diverging_run_stops_at_the_step_naming_the_loss_term_and_keeps_its_last_good_checkpoint() {
    let out = scratch("bad_input_diverge");
    let args = tiny_quickstart(
        &out,
        &[
            "--set",
            "optim.lr=1e30",
            "--set",
            "output.checkpoint_every=1",
        ],
    );
    let o = common::run(&args);
    refused_in_one_line(&o, "training diverged", "lr 1e30");
    let e = stderr(&o);
    // Either the weights the step left or the next step's loss names it.
    assert!(
        e.contains("training diverged") && (e.contains("NaN") || e.contains("inf")),
        "{e}"
    );
    // The checkpoint left is one from before the divergence: it loads (every weight
    // finite), and the step it names is the one the message says is kept.
    let dir = common::only_run_dir(&out, "quickstart");
    let kept: usize = e
        .split("the checkpoint of step ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no kept checkpoint named: {e}"));
    let o = common::wgseg(&["eval", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = common::records(&dir);
    let logged = recs
        .iter()
        .filter(|r| r["kind"] == "train")
        .filter_map(|r| r["step"].as_u64())
        .max()
        .unwrap();
    assert!(kept as u64 <= logged, "{recs:?}");
}

#[test]
fn a_run_that_fails_before_it_trains_a_step_leaves_no_run_folder() {
    // Step 2 diverges; nothing is logged or saved before step 2's log.
    let out = scratch("bad_input_early_failure");
    let sets = [
        "--set",
        "optim.lr=1e30",
        "--set",
        "output.log_every=2",
        "--set",
        "output.checkpoint_every=100",
    ];
    let o = common::run(&tiny_quickstart(&out, &sets));
    refused_in_one_line(
        &o,
        "step 2: loss_infonce is NaN or infinite",
        "early failure",
    );
    assert!(
        stderr(&o).contains("no checkpoint was written yet"),
        "{}",
        stderr(&o)
    );
    let written: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(written.is_empty(), "left {written:?}");
}

#[test]
fn on_nonfinite_skip_drops_each_diverged_step_logs_it_and_finishes_the_run() {
    let out = scratch("bad_input_skip");
    let skip = [
        "--set",
        "optim.lr=1e30",
        "--set",
        "output.on_nonfinite=skip",
    ];
    let o = common::run(&tiny_quickstart(&out, &skip));
    assert!(o.status.success(), "{}", stderr(&o));
    // Step 1's update is finite; the losses of the weights it leaves are not.
    let dir = common::only_run_dir(&out, "quickstart");
    let skipped: Vec<u64> = common::records(&dir)
        .iter()
        .filter(|r| r["kind"] == "skipped")
        .filter_map(|r| r["step"].as_u64())
        .collect();
    assert_eq!(skipped, [2, 3, 4]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["skipped_steps"], 3);
    // Dropped steps leave the weights (batch-norm statistics included) finite.
    let o = common::wgseg(&["eval", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_kernel_that_never_ends_ends_the_run_with_one_line_after_the_watchdog_limit() {
    let out = scratch("bad_input_hang");
    let shaders = scratch("bad_input_hang_shaders");
    let fill = std::fs::read_to_string("shaders/elementwise_fill.wgsl").unwrap();
    let endless = fill.replace(
        "out[i] = p.value;",
        "loop {\n        out[i] = out[i] + p.value;\n    }",
    );
    assert_ne!(fill, endless);
    std::fs::write(shaders.join("elementwise_fill.wgsl"), endless).unwrap();
    let args = tiny_quickstart(&out, &[]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = [
        ("WGSEG_SHADER_DIR", shaders.to_str().unwrap()),
        ("WGSEG_GPU_TIMEOUT_S", "2"),
    ];
    let started = std::time::Instant::now();
    let o = common::wgseg(&refs, &env);
    refused_in_one_line(&o, "did not finish within 2 s", "endless kernel");
    assert!(started.elapsed().as_secs() < 60, "{:?}", started.elapsed());
}

#[test]
fn kill_9_at_any_moment_leaves_a_whole_checkpoint_or_none_and_resume_gives_the_same_run() {
    let every_step = ["--set", "output.checkpoint_every=1"];
    let full = scratch("kill_full");
    assert!(common::run(&tiny_quickstart(&full, &every_step))
        .status
        .success());
    let want = common::records(&common::only_run_dir(&full, "quickstart"));
    for (i, delay_ms) in [300u64, 800, 1400, 2200, 3200].into_iter().enumerate() {
        let out = scratch(&format!("kill_{i}"));
        let args = tiny_quickstart(&out, &every_step);
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wgseg"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SIGKILL: no handler runs, whatever the process was writing.
        let _ = child.kill();
        child.wait().unwrap();
        if !out.join("quickstart").exists() {
            continue;
        }
        let dir = common::only_run_dir(&out, "quickstart");
        // Every line of metrics.jsonl is whole JSON (records() parses each).
        common::records(&dir);
        if dir.join("checkpoint.safetensors").exists() {
            let o = common::wgseg(&["eval", dir.to_str().unwrap()], &[]);
            assert!(o.status.success(), "after {delay_ms} ms: {}", stderr(&o));
        }
        let o = common::wgseg(&["train", "--resume", dir.to_str().unwrap()], &[]);
        assert!(o.status.success(), "after {delay_ms} ms: {}", stderr(&o));
        assert_eq!(common::records(&dir), want, "after {delay_ms} ms");
    }
}
