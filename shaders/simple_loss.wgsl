// Pointwise regression losses (l1, mse, lsgan), the mean softmax entropy, and the
// one-workgroup ratio of two sums that several losses finish with.
//
// Reductions to a scalar run in two steps: a grid-stride `*_sums` entry leaves one
// partial sum per invocation (barrier-free, coalesced), then reduce.wgsl or `ratio`
// adds the partials.
struct Params {
    n: u32,
    // invocations of a `*_sums` entry
    threads: u32,
    // gradient factor (1/n for a mean)
    scale: f32,
    // 1 when the output gradient has one value per element, 0 when it is a scalar
    per_elem: u32,
    // 0: the target comes from `t`; 1: every target is `target_value` (lsgan)
    const_target: u32,
    target_value: f32,
    // entropy: the [outer, classes, inner] view; n counts positions there
    classes: u32,
    inner: u32,
}

// 0: |d| (l1), 1: d^2 (mse, lsgan), where d = input - target.
override OP: u32 = 0u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> t: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read> num: array<f32>;
@group(0) @binding(6) var<storage, read> den: array<f32>;
@group(0) @binding(7) var<storage, read_write> den_sum: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;

var<workgroup> part_num: array<f32, 256>;
var<workgroup> part_den: array<f32, 256>;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn diff(i: u32) -> f32 {
    if p.const_target == 1u {
        return x[i] - p.target_value;
    }
    return x[i] - t[i];
}

fn pointwise(d: f32) -> f32 {
    if OP == 0u {
        return abs(d);
    }
    return d * d;
}

@compute @workgroup_size(256)
fn pointwise_none(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if i >= p.n {
        return;
    }
    out[i] = pointwise(diff(i));
}

@compute @workgroup_size(256)
fn pointwise_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_id(gid, nwg);
    if k >= p.threads {
        return;
    }
    var acc = 0.0;
    for (var i = k; i < p.n; i += p.threads) {
        acc += pointwise(diff(i));
    }
    out[k] = acc;
}

// d|d|/dd = sign(d) (0 at d = 0, as torch); d(d^2)/dd = 2d.
@compute @workgroup_size(256)
fn pointwise_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = flat_id(gid, nwg);
    if i >= p.n {
        return;
    }
    let d = diff(i);
    var slope = 2.0 * d;
    if OP == 0u {
        slope = sign(d);
    }
    let gi = g[select(0u, i, p.per_elem == 1u)];
    dx[i] = slope * gi * p.scale;
}

fn lane_base(q: u32) -> u32 {
    return (q / p.inner) * p.classes * p.inner + q % p.inner;
}

// (log-sum-exp, entropy) of one position: H = lse - sum_c softmax_c * x_c.
fn lane_entropy(base: u32) -> vec2<f32> {
    var m = x[base];
    for (var c = 1u; c < p.classes; c++) {
        m = max(m, x[base + c * p.inner]);
    }
    var s = 0.0;
    var sx = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        let v = x[base + c * p.inner];
        let e = exp(v - m);
        s += e;
        sx += e * v;
    }
    let lse = m + log(s);
    return vec2<f32>(lse, lse - sx / s);
}

@compute @workgroup_size(256)
fn entropy_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let k = flat_id(gid, nwg);
    if k >= p.threads {
        return;
    }
    var acc = 0.0;
    for (var q = k; q < p.n; q += p.threads) {
        acc += lane_entropy(lane_base(q)).y;
    }
    out[k] = acc;
}

// dH/dx_c = -p_c * (log p_c + H)
@compute @workgroup_size(256)
fn entropy_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let q = flat_id(gid, nwg);
    if q >= p.n {
        return;
    }
    let base = lane_base(q);
    let st = lane_entropy(base);
    let k = g[0] * p.scale;
    for (var c = 0u; c < p.classes; c++) {
        let i = base + c * p.inner;
        let logp = x[i] - st.x;
        dx[i] = -exp(logp) * (logp + st.y) * k;
    }
}

// out[0] = sum(num) / sum(den), den_sum[0] = sum(den), over p.n values; one workgroup.
@compute @workgroup_size(256)
fn ratio(@builtin(local_invocation_index) lid: u32) {
    var a = 0.0;
    var b = 0.0;
    for (var i = lid; i < p.n; i += 256u) {
        a += num[i];
        b += den[i];
    }
    part_num[lid] = a;
    part_den[lid] = b;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            part_num[lid] += part_num[lid + s];
            part_den[lid] += part_den[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        out[0] = part_num[0] / part_den[0];
        den_sum[0] = part_den[0];
    }
}
