// Cross-entropy fused with log-softmax over the class axis of an input viewed as
// [outer, classes, inner] (inner = spatial positions; 1 for [N, C]). One position
// ("pixel") per invocation, or a grid-stride strip of pixels for the reductions;
// consecutive invocations read consecutive addresses when inner > 1.
//
// loss_i = weight[y_i] * (logsumexp_c x_ic - x_{i,y_i}); pixels whose label is
// `ignore` or outside [0, classes) contribute nothing (the host validates labels).
struct Params {
    classes: u32,
    inner: u32,
    pixels: u32,
    // invocations of `forward_sums`
    threads: u32,
    ignore: u32,
    // backward: 0 per-pixel output gradient, 1 scalar / den[0] (mean), 2 scalar (sum)
    mode: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> loss: array<f32>;
@group(0) @binding(5) var<storage, read_write> wsum: array<f32>;
@group(0) @binding(6) var<storage, read> lse_in: array<f32>;
@group(0) @binding(7) var<storage, read> g: array<f32>;
@group(0) @binding(8) var<storage, read> den: array<f32>;
@group(0) @binding(9) var<storage, read_write> dx: array<f32>;
@group(0) @binding(10) var<uniform> p: Params;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn lane_base(q: u32) -> u32 {
    return (q / p.inner) * p.classes * p.inner + q % p.inner;
}

fn counted(y: u32) -> bool {
    return y != p.ignore && y < p.classes;
}

fn lane_lse(base: u32) -> f32 {
    var m = x[base];
    for (var c = 1u; c < p.classes; c++) {
        m = max(m, x[base + c * p.inner]);
    }
    var s = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        s += exp(x[base + c * p.inner] - m);
    }
    return m + log(s);
}

// Saves the pixel's log-sum-exp and returns (weighted loss, weight), zeros when not counted.
fn pixel(q: u32) -> vec2<f32> {
    let base = lane_base(q);
    let l = lane_lse(base);
    lse[q] = l;
    let y = labels[q];
    if !counted(y) {
        return vec2<f32>(0.0, 0.0);
    }
    let w = weight[y];
    return vec2<f32>(w * (l - x[base + y * p.inner]), w);
}

@compute @workgroup_size(256)
fn forward_none(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_id(gid, nwg);
    if q >= p.pixels {
        return;
    }
    loss[q] = pixel(q).x;
}

// Partial sums of the weighted losses and of the weights, one per invocation.
@compute @workgroup_size(256)
fn forward_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_id(gid, nwg);
    if k >= p.threads {
        return;
    }
    var acc = vec2<f32>(0.0, 0.0);
    for (var q = k; q < p.pixels; q += p.threads) {
        acc += pixel(q);
    }
    loss[k] = acc.x;
    wsum[k] = acc.y;
}

// dx_c = coef * weight[y] * (softmax_c - [c == y])
@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_id(gid, nwg);
    if q >= p.pixels {
        return;
    }
    let base = lane_base(q);
    let y = labels[q];
    var coef = 0.0;
    if counted(y) {
        switch p.mode {
            case 0u: {
                coef = g[q];
            }
            case 1u: {
                coef = g[0] / den[0];
            }
            default: {
                coef = g[0];
            }
        }
        coef *= weight[y];
    }
    let l = lse_in[q];
    for (var c = 0u; c < p.classes; c++) {
        let i = base + c * p.inner;
        dx[i] = coef * (exp(x[i] - l) - select(0.0, 1.0, c == y));
    }
}
