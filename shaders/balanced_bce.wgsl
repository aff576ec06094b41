// MaskContrast's class-balanced binary cross-entropy on logits (their
// BalancedCrossEntropyLoss). Targets are binarised at 0.5 as theirs are. With
// w = #negatives / #elements over the whole batch and g = [x >= 0]:
//   loss_val = x * (t - g) - log(1 + exp(x - 2 x g))      (= t log s(x) + (1-t) log(1-s(x)))
//   loss = (w * sum(-t * loss_val) + (1 - w) * sum(-(1 - t) * loss_val)) * scale
// Three passes: count positives (partials), weighted loss (partials), backward.
struct Params {
    n: u32,
    // invocations of the partial-sum entries
    threads: u32,
    // 1/numel with size_average, else 1
    scale: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> t: array<f32>;
// the number of positives (a reduced `count_positive`)
@group(0) @binding(2) var<storage, read> npos: array<f32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn positive(i: u32) -> bool {
    return t[i] >= 0.5;
}

// The class weight of element i: w for positives, 1 - w for negatives.
fn class_weight(i: u32) -> f32 {
    let n = f32(p.n);
    let w = (n - npos[0]) / n;
    return select(1.0 - w, w, positive(i));
}

@compute @workgroup_size(256)
fn count_positive(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_id(gid, nwg);
    if k >= p.threads {
        return;
    }
    var acc = 0.0;
    for (var i = k; i < p.n; i += p.threads) {
        acc += select(0.0, 1.0, positive(i));
    }
    partial[k] = acc;
}

@compute @workgroup_size(256)
fn forward_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_id(gid, nwg);
    if k >= p.threads {
        return;
    }
    var acc = 0.0;
    for (var i = k; i < p.n; i += p.threads) {
        let v = x[i];
        let gz = select(0.0, 1.0, v >= 0.0);
        let tb = select(0.0, 1.0, positive(i));
        let loss_val = v * (tb - gz) - log(1.0 + exp(v - 2.0 * v * gz));
        acc -= class_weight(i) * loss_val;
    }
    partial[k] = acc;
}

// d loss_val / dx = t - sigmoid(x) on both sides of 0.
@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if i >= p.n {
        return;
    }
    let v = x[i];
    let e = exp(-abs(v));
    let sig = select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0);
    let tb = select(0.0, 1.0, positive(i));
    dx[i] = -class_weight(i) * (tb - sig) * g[0] * p.scale;
}
