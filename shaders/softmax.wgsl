// softmax and log_softmax over one axis of a tensor viewed as [outer, n, inner], with
// their backward. One invocation per (outer, inner) lane; consecutive invocations
// read consecutive addresses when inner > 1 (e.g. classes of a [B,C,H,W] map).
struct Params {
    outer: u32,
    n: u32,
    inner: u32,
    lanes: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> by: array<f32>;
@group(0) @binding(3) var<storage, read> bg: array<f32>;
@group(0) @binding(4) var<storage, read_write> bdx: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

fn lane_base(t: u32) -> u32 {
    return (t / p.inner) * p.n * p.inner + t % p.inner;
}

// Returns (max, sum of exp(x - max)) of one lane.
fn lane_stats(base: u32) -> vec2<f32> {
    var m = x[base];
    for (var j = 1u; j < p.n; j++) {
        m = max(m, x[base + j * p.inner]);
    }
    var s = 0.0;
    for (var j = 0u; j < p.n; j++) {
        s += exp(x[base + j * p.inner] - m);
    }
    return vec2<f32>(m, s);
}

@compute @workgroup_size(256)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if t >= p.lanes {
        return;
    }
    let base = lane_base(t);
    let st = lane_stats(base);
    let inv = 1.0 / st.y;
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        y[i] = exp(x[i] - st.x) * inv;
    }
}

@compute @workgroup_size(256)
fn log_softmax(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if t >= p.lanes {
        return;
    }
    let base = lane_base(t);
    let st = lane_stats(base);
    let lse = st.x + log(st.y);
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        y[i] = x[i] - lse;
    }
}

// dx = y * (g - sum(g * y))
@compute @workgroup_size(256)
fn softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if t >= p.lanes {
        return;
    }
    let base = lane_base(t);
    var dot = 0.0;
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        dot += bg[i] * by[i];
    }
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        bdx[i] = by[i] * (bg[i] - dot);
    }
}

// dx = g - exp(y) * sum(g), with y = log_softmax(x)
@compute @workgroup_size(256)
fn log_softmax_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if t >= p.lanes {
        return;
    }
    let base = lane_base(t);
    var total = 0.0;
    for (var j = 0u; j < p.n; j++) {
        total += bg[base + j * p.inner];
    }
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        bdx[i] = bg[i] - exp(by[i]) * total;
    }
}
