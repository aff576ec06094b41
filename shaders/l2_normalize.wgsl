// L2 normalisation along one axis of a tensor viewed as [outer, n, inner]
// (torch.nn.functional.normalize with p=2): y = x / max(||x||, eps), and its backward.
// One invocation per (outer, inner) lane, as in softmax.wgsl; consecutive invocations
// read consecutive addresses when inner > 1 (e.g. pixels of a [B,D,H,W] map).
struct Params {
    outer: u32,
    n: u32,
    inner: u32,
    lanes: u32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn lane_base(t: u32) -> u32 {
    return (t / p.inner) * p.n * p.inner + t % p.inner;
}

fn lane_norm(base: u32) -> f32 {
    var s = 0.0;
    for (var j = 0u; j < p.n; j++) {
        let v = x[base + j * p.inner];
        s += v * v;
    }
    return sqrt(s);
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if t >= p.lanes {
        return;
    }
    let base = lane_base(t);
    let inv = 1.0 / max(lane_norm(base), p.eps);
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        y[i] = x[i] * inv;
    }
}

// Above eps: dx = (g - y * (y . g)) / ||x||. At or below eps the denominator is the
// constant eps (clamp_min passes no gradient), so dx = g / eps.
@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * nwg.x * 256u;
    if t >= p.lanes {
        return;
    }
    let base = lane_base(t);
    let norm = lane_norm(base);
    if norm <= p.eps {
        let inv = 1.0 / p.eps;
        for (var j = 0u; j < p.n; j++) {
            let i = base + j * p.inner;
            dx[i] = g[i] * inv;
        }
        return;
    }
    let inv = 1.0 / norm;
    var yg = 0.0;
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        yg += x[i] * g[i];
    }
    yg *= inv;
    for (var j = 0u; j < p.n; j++) {
        let i = base + j * p.inner;
        dx[i] = (g[i] - x[i] * inv * yg) * inv;
    }
}
