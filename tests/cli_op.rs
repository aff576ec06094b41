//! `wgseg op`, `wgseg info`, `wgseg shaders check` and `wgseg gradcheck` as a user runs them.

mod common;

use common::{data, rel_err, scratch, stderr, stdout, wgseg};
use wgseg::io::{read_host, HostData};

fn f32_tensors(path: &std::path::Path) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    read_host(path)
        .unwrap()
        .into_iter()
        .map(|(n, s, d)| match d {
            HostData::F32(v) => (n, s, v),
            HostData::U32(_) => panic!("{n} is not f32"),
        })
        .collect()
}

fn round_trip(op: &str, attrs: &[&str]) {
    let out = scratch(&format!("op_{op}")).join("out.safetensors");
    let input = data(&format!("op_fixtures/{op}_in.safetensors"));
    let mut args = vec![
        "op",
        op,
        "--in",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for a in attrs {
        args.extend(["--attr", a]);
    }
    let o = wgseg(&args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = f32_tensors(&out);
    let expected = f32_tensors(&data(&format!("op_fixtures/{op}_expected.safetensors")));
    assert_eq!(
        got.len(),
        expected.len(),
        "tensors written: {:?}",
        got.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    for (name, shape, want) in &expected {
        let (_, gs, gv) = got
            .iter()
            .find(|t| &t.0 == name)
            .unwrap_or_else(|| panic!("{op}: no {name} written"));
        assert_eq!(gs, shape, "{op} {name}");
        let e = rel_err(gv, want);
        assert!(e < 1e-5, "{op} {name}: relative error {e}");
    }
}

#[test]
fn op_matmul_matches_numpy_forward_and_backward() {
    round_trip("matmul", &[]);
}

#[test]
fn op_softmax_matches_numpy_forward_and_backward() {
    round_trip("softmax", &["dim=1"]);
}

fn op_error(args: &[&str]) -> String {
    let o = wgseg(args, &[]);
    assert_eq!(o.status.code(), Some(2), "{args:?} should fail with exit 2");
    let e = stderr(&o);
    assert_eq!(
        e.trim().lines().count(),
        1,
        "one-line error expected, got: {e}"
    );
    e
}

#[test]
fn op_bad_input_is_one_clear_line() {
    let out = scratch("op_errors").join("o.safetensors");
    let o = out.to_str().unwrap();
    let mm = data("op_fixtures/matmul_in.safetensors");
    let sm = data("op_fixtures/softmax_in.safetensors");
    let (mm, sm) = (mm.to_str().unwrap(), sm.to_str().unwrap());
    assert!(op_error(&["op", "matmull", "--in", mm, "--out", o]).contains("unknown op"));
    let e = op_error(&["op", "add", "--in", sm, "--out", o]);
    assert!(
        e.contains("add") && e.contains("missing input tensor other"),
        "{e}"
    );
    let e = op_error(&["op", "softmax", "--in", sm, "--out", o, "--attr", "dim=x"]);
    assert!(e.contains("dim=\"x\" is not a valid int"), "{e}");
    let e = op_error(&["op", "softmax", "--in", sm, "--out", o, "--attr", "dims=1"]);
    assert!(e.contains("unknown attribute \"dims\""), "{e}");
    let e = op_error(&["op", "softmax", "--in", sm, "--out", o]);
    assert!(e.contains("missing required attribute dim"), "{e}");
    let e = op_error(&[
        "op",
        "softmax",
        "--in",
        "/nonexistent.safetensors",
        "--out",
        o,
        "--attr",
        "dim=1",
    ]);
    assert!(e.contains("/nonexistent.safetensors"), "{e}");
    // matmul inputs given to softmax: `other` is unexpected.
    let e = op_error(&["op", "softmax", "--in", mm, "--out", o, "--attr", "dim=1"]);
    assert!(e.contains("unexpected tensor other"), "{e}");
}

#[test]
fn op_wrong_shape_names_the_tensors() {
    let dir = scratch("op_shape");
    let input = dir.join("in.safetensors");
    let gpu = wgseg::Gpu::shared().unwrap();
    let a = wgseg::Tensor::from_slice(&gpu, &[1.0; 6], &[2, 3]).unwrap();
    let b = wgseg::Tensor::from_slice(&gpu, &[1.0; 8], &[4, 2]).unwrap();
    wgseg::io::write(&input, &[("input".into(), a), ("other".into(), b)]).unwrap();
    let out = dir.join("o.safetensors");
    let e = op_error(&[
        "op",
        "matmul",
        "--in",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        e.contains("matmul") && e.contains("[2, 3]") && e.contains("[4, 2]"),
        "{e}"
    );
}

#[test]
fn op_names_the_files_dtype_an_overflowing_shape_and_the_output_file() {
    let dir = scratch("op_dtype");
    let ints = dir.join("i64.safetensors");
    let values: Vec<u8> = (0..6i64).flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![2, 3], &values).unwrap();
    std::fs::write(
        &ints,
        safetensors::serialize([("input", view)], None).unwrap(),
    )
    .unwrap();
    let out = dir.join("o.safetensors");
    let (i, o) = (ints.to_str().unwrap(), out.to_str().unwrap());
    let e = op_error(&["op", "relu", "--in", i, "--out", o]);
    assert!(
        e.contains("relu: input input must be f32, the file holds i64"),
        "{e}"
    );
    let sm = data("op_fixtures/softmax_in.safetensors");
    let sm = sm.to_str().unwrap();
    let huge = "size=2147483647,2147483647,2147483647,2,7,3";
    let e = op_error(&["op", "expand", "--in", sm, "--out", o, "--attr", huge]);
    assert!(e.contains("has more elements than 64 bits count"), "{e}");
    // The file asked for is named, not the temporary file it is written through.
    let missing = dir.join("no_such_dir").join("o.safetensors");
    let m = missing.to_str().unwrap();
    let e = op_error(&["op", "softmax", "--in", sm, "--out", m, "--attr", "dim=1"]);
    assert!(e.contains(&format!("{m}: ")), "{e}");
}

#[test]
fn op_list_names_every_op_with_inputs() {
    let o = wgseg(&["op", "--list"], &[]);
    assert!(o.status.success());
    let s = stdout(&o);
    for op in wgseg::op_table::all() {
        assert!(
            s.lines().any(|l| l.starts_with(op.name)),
            "{} missing from --list",
            op.name
        );
    }
    assert!(s.contains("inputs: input:f32, other:f32"));
}

#[test]
fn info_describes_the_adapter() {
    let o = wgseg(&["info"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    for key in [
        "adapter",
        "backend",
        "device type",
        "driver",
        "storage buffers",
        "max binding",
        "workgroup storage",
        "invocations",
        "subgroups",
        "f16",
        "timestamp queries",
    ] {
        assert!(s.contains(key), "info lacks {key}: {s}");
    }
}

#[test]
fn no_adapter_is_one_line_with_the_fix_and_exit_2() {
    // No Metal on Linux: the instance finds no adapter at all.
    let o = wgseg(&["info"], &[("WGPU_BACKEND", "metal")]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains("mesa-vulkan-drivers"), "{e}");
    let o = wgseg(&["info"], &[("WGPU_ADAPTER_NAME", "no-such-gpu")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("matches no adapter"), "{}", stderr(&o));
}

#[test]
fn shaders_check_passes_and_reports_broken_overrides() {
    let o = wgseg(&["shaders", "check"], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    let dir = scratch("bad_shaders");
    std::fs::write(
        dir.join("elementwise_fill.wgsl"),
        "@compute @workgroup_size(1)\nfn fill() {\n    let x = ;\n}\n",
    )
    .unwrap();
    let o = wgseg(&["shaders", "check", dir.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    let s = stdout(&o);
    assert!(s.contains("elementwise_fill.wgsl:3:"), "{s}");
}

/// A built-in shader's text with `from` replaced by `to` (which must occur).
fn edited(name: &str, from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(format!("shaders/{name}.wgsl")).unwrap();
    assert!(text.contains(from), "{name}: no {from:?}");
    text.replace(from, to)
}

#[test]
fn shaders_check_holds_each_override_to_the_interface_the_engine_dispatches() {
    // (file, its text, what the FAIL line must say)
    let cases = [
        (
            "elementwise_fill",
            edited("elementwise_fill", "fn fill(", "fn fil("),
            "has no entry point \"fill\"",
        ),
        (
            "elementwise_fill",
            String::new(),
            "has no entry point \"fill\"",
        ),
        (
            "softmax",
            edited(
                "softmax",
                "var<storage, read> x:",
                "var<storage, read_write> x:",
            ),
            "binds [0: read_write, 1: read_write, 5: uniform]; the engine binds [0: read,",
        ),
        (
            "conv2d",
            edited("conv2d", "override HAS_BIAS: bool", "const HAS_BIAS: bool"),
            "has no override constant HAS_BIAS",
        ),
        (
            "elementwise_fill",
            edited(
                "elementwise_fill",
                "@workgroup_size(256)",
                "@workgroup_size(128)",
            ),
            "@workgroup_size must stay [256, 1, 1]",
        ),
        (
            "elementwise_fil",
            edited("elementwise_fill", "", ""),
            "overrides no built-in kernel",
        ),
    ];
    for (i, (file, text, want)) in cases.iter().enumerate() {
        let dir = scratch(&format!("interface_{i}"));
        std::fs::write(dir.join(format!("{file}.wgsl")), text).unwrap();
        let o = wgseg(&["shaders", "check", dir.to_str().unwrap()], &[]);
        assert_eq!(o.status.code(), Some(1), "{file}: {}", stdout(&o));
        let text = stdout(&o);
        let fails: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL")).collect();
        assert_eq!(fails.len(), 1, "{fails:?}");
        assert!(fails[0].contains(&format!("{file}.wgsl: ")), "{fails:?}");
        assert!(
            fails[0].contains(want),
            "{file}: wanted {want:?} in {fails:?}"
        );
        // A run refuses the same directory before it computes anything.
        let o = wgseg(
            &["gradcheck", "softmax"],
            &[("WGSEG_SHADER_DIR", dir.to_str().unwrap())],
        );
        assert_eq!(o.status.code(), Some(2), "{file}: {}", stdout(&o));
        assert!(stderr(&o).contains(want), "{file}: {}", stderr(&o));
    }
    // An override with the built-in's interface passes.
    let dir = scratch("interface_ok");
    let same = edited(
        "elementwise_fill",
        "out[i] = p.value;",
        "out[i] = p.value + 0.0;",
    );
    std::fs::write(dir.join("elementwise_fill.wgsl"), same).unwrap();
    let o = wgseg(&["shaders", "check", dir.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[test]
fn gradcheck_command_passes() {
    let o = wgseg(&["gradcheck", "matmul", "softmax", "sum"], &[]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("0 failed"));
    let o = wgseg(&["gradcheck", "nosuchop"], &[]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn bench_prints_a_table_and_writes_json() {
    let json = scratch("bench").join("bench.json");
    let o = wgseg(
        &[
            "bench",
            "sum",
            "--iters",
            "1",
            "--json",
            json.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("GB/s"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let first = &v.as_array().unwrap()[0];
    for key in ["name", "shape", "ms"] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    assert!(first["ms"].as_f64().unwrap() > 0.0);
}
