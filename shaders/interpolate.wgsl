// F.interpolate of [planes, H, W] maps, mode 'nearest' or 'bilinear', with PyTorch's
// CPU index arithmetic in f32. The host passes the per-axis source scale (already
// resolved from sizes, scale_factor and align_corners, as PyTorch does) so the
// kernel only multiplies. Backward gathers per input pixel: along each axis the
// outputs that read input v form a contiguous range (the source index is monotone in
// the output index), found by binary search, so no float atomics are needed.
override MODE: u32 = 0u; // 0 nearest, 1 bilinear
override ALIGN_CORNERS: bool = false;

struct Params {
    n: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    scale_h: f32,
    scale_w: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// The two source taps of output index o along one axis and their weights.
struct Taps {
    i0: u32,
    i1: u32,
    l0: f32,
    l1: f32,
}

fn taps(o: u32, n_in: u32, scale: f32) -> Taps {
    if MODE == 0u {
        let i = min(u32(floor(f32(o) * scale)), n_in - 1u);
        return Taps(i, i, 1.0, 0.0);
    }
    var src = scale * f32(o);
    if !ALIGN_CORNERS {
        src = max(scale * (f32(o) + 0.5) - 0.5, 0.0);
    }
    let i0 = min(u32(floor(src)), n_in - 1u);
    let l1 = clamp(src - f32(i0), 0.0, 1.0);
    let i1 = select(i0, i0 + 1u, i0 < n_in - 1u);
    return Taps(i0, i1, 1.0 - l1, l1);
}

// The weight with which output o reads input v.
fn weight(t: Taps, v: u32) -> f32 {
    return select(0.0, t.l0, t.i0 == v) + select(0.0, t.l1, t.i1 == v);
}

// The first output whose first tap is at least v (n_out when none is).
fn first_reaching(v: u32, n_in: u32, n_out: u32, scale: f32) -> u32 {
    var lo = 0u;
    var hi = n_out;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if taps(mid, n_in, scale).i0 < v {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

// Outputs [lo, hi) along one axis that read input v: their first tap is v, or v - 1
// for bilinear (whose second tap is then v).
fn readers(v: u32, n_in: u32, n_out: u32, scale: f32) -> vec2<u32> {
    var start = v;
    if MODE == 1u && v > 0u {
        start = v - 1u;
    }
    return vec2<u32>(first_reaching(start, n_in, n_out, scale), first_reaching(v + 1u, n_in, n_out, scale));
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    let ow = i % p.out_w;
    let t = i / p.out_w;
    let oh = t % p.out_h;
    let base = (t / p.out_h) * p.in_h * p.in_w;
    let th = taps(oh, p.in_h, p.scale_h);
    let tw = taps(ow, p.in_w, p.scale_w);
    // A plain copy keeps nearest exact for inf inputs (a zero weight times inf is NaN).
    if MODE == 0u {
        y[i] = x[base + th.i0 * p.in_w + tw.i0];
        return;
    }
    let r0 = base + th.i0 * p.in_w;
    let r1 = base + th.i1 * p.in_w;
    y[i] = th.l0 * (tw.l0 * x[r0 + tw.i0] + tw.l1 * x[r0 + tw.i1])
        + th.l1 * (tw.l0 * x[r1 + tw.i0] + tw.l1 * x[r1 + tw.i1]);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    let iw = i % p.in_w;
    let t = i / p.in_w;
    let ih = t % p.in_h;
    let obase = (t / p.in_h) * p.out_h * p.out_w;
    let rows = readers(ih, p.in_h, p.out_h, p.scale_h);
    let cols = readers(iw, p.in_w, p.out_w, p.scale_w);
    var acc = 0.0;
    for (var oh = rows.x; oh < rows.y; oh++) {
        let wh = weight(taps(oh, p.in_h, p.scale_h), ih);
        var row = 0.0;
        for (var ow = cols.x; ow < cols.y; ow++) {
            row += weight(taps(ow, p.in_w, p.scale_w), iw) * g[obase + oh * p.out_w + ow];
        }
        acc += wh * row;
    }
    dx[i] = acc;
}
