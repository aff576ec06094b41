// 2-D pooling over [planes, H, W] with PyTorch's semantics: max_pool2d (saving the
// plane-local argmax like return_indices), avg_pool2d and adaptive_avg_pool2d. Forward
// kernels compute one output each. Backward kernels compute one input gradient each by
// gathering over the outputs whose windows contain that pixel, so overlapping windows
// need no float atomics.
struct Params {
    n: u32,
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    k_h: u32,
    k_w: u32,
    s_h: u32,
    s_w: u32,
    p_h: u32,
    p_w: u32,
    d_h: u32,
    d_w: u32,
    count_include_pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read> saved_argmax: array<u32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

const NO_INDEX: u32 = 0xffffffffu;

fn thread(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// (plane, row, column) of flat index i over planes of h x w.
fn split(i: u32, h: u32, w: u32) -> vec3<u32> {
    let t = i / w;
    return vec3<u32>(t / h, t % h, i % w);
}

// #include is_nan

// The first tap start + k * step that is not negative (may lie past the input).
fn first_inside(start: i32, step: u32) -> i32 {
    if start >= 0 {
        return start;
    }
    let s = i32(step);
    return start + ((-start + s - 1) / s) * s;
}

// Padding reads as -inf, so the max runs over in-bounds taps only; like PyTorch's CPU
// kernel the first maximum wins and a NaN wins over everything.
@compute @workgroup_size(256)
fn max_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread(gid, nwg);
    if i >= p.n {
        return;
    }
    let o = split(i, p.out_h, p.out_w);
    let hs = i32(o.y * p.s_h) - i32(p.p_h);
    let ws = i32(o.z * p.s_w) - i32(p.p_w);
    let he = min(hs + i32((p.k_h - 1u) * p.d_h + 1u), i32(p.in_h));
    let we = min(ws + i32((p.k_w - 1u) * p.d_w + 1u), i32(p.in_w));
    let h0 = first_inside(hs, p.d_h);
    let w0 = first_inside(ws, p.d_w);
    let base = o.x * p.in_h * p.in_w;
    var best = bitcast<f32>(0xff800000u);
    var best_i = NO_INDEX;
    if h0 < he && w0 < we {
        best_i = u32(h0) * p.in_w + u32(w0);
    }
    for (var h = h0; h < he; h += i32(p.d_h)) {
        for (var w = w0; w < we; w += i32(p.d_w)) {
            let j = u32(h) * p.in_w + u32(w);
            let v = x[base + j];
            if v > best || is_nan(v) {
                best = v;
                best_i = j;
            }
        }
    }
    y[i] = best;
    argmax[i] = best_i;
}

// Each output whose window holds this pixel is reached through exactly one tap
// (kh, kw); it passes its gradient on when its argmax is this pixel.
@compute @workgroup_size(256)
fn max_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread(gid, nwg);
    if i >= p.n {
        return;
    }
    let q = split(i, p.in_h, p.in_w);
    let j = q.y * p.in_w + q.z;
    let obase = q.x * p.out_h * p.out_w;
    var acc = 0.0;
    for (var kh = 0u; kh < p.k_h; kh++) {
        let th = i32(q.y + p.p_h) - i32(kh * p.d_h);
        if th < 0 {
            break;
        }
        if u32(th) % p.s_h != 0u || u32(th) / p.s_h >= p.out_h {
            continue;
        }
        let orow = obase + (u32(th) / p.s_h) * p.out_w;
        for (var kw = 0u; kw < p.k_w; kw++) {
            let tw = i32(q.z + p.p_w) - i32(kw * p.d_w);
            if tw < 0 {
                break;
            }
            if u32(tw) % p.s_w != 0u || u32(tw) / p.s_w >= p.out_w {
                continue;
            }
            let oi = orow + u32(tw) / p.s_w;
            if saved_argmax[oi] == j {
                acc += g[oi];
            }
        }
    }
    dx[i] = acc;
}

// One avg_pool2d window clipped to the input, with PyTorch's divisor: the window
// clipped to the padded input when count_include_pad (so ceil_mode's overhang past
// the padding is not counted), else the in-bounds taps.
struct AvgWindow {
    h0: u32,
    h1: u32,
    w0: u32,
    w1: u32,
    divisor: f32,
}

fn avg_window(oh: u32, ow: u32) -> AvgWindow {
    let hs = i32(oh * p.s_h) - i32(p.p_h);
    let ws = i32(ow * p.s_w) - i32(p.p_w);
    let he = min(hs + i32(p.k_h), i32(p.in_h + p.p_h));
    let we = min(ws + i32(p.k_w), i32(p.in_w + p.p_w));
    let h0 = u32(max(hs, 0));
    let w0 = u32(max(ws, 0));
    let h1 = u32(max(min(he, i32(p.in_h)), 0));
    let w1 = u32(max(min(we, i32(p.in_w)), 0));
    var divisor = f32((he - hs) * (we - ws));
    if p.count_include_pad == 0u {
        divisor = f32((max(h1, h0) - h0) * (max(w1, w0) - w0));
    }
    return AvgWindow(h0, h1, w0, w1, divisor);
}

@compute @workgroup_size(256)
fn avg_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread(gid, nwg);
    if i >= p.n {
        return;
    }
    let o = split(i, p.out_h, p.out_w);
    let win = avg_window(o.y, o.z);
    if win.h0 >= win.h1 || win.w0 >= win.w1 {
        y[i] = 0.0;
        return;
    }
    let base = o.x * p.in_h * p.in_w;
    var sum = 0.0;
    for (var h = win.h0; h < win.h1; h++) {
        for (var w = win.w0; w < win.w1; w++) {
            sum += x[base + h * p.in_w + w];
        }
    }
    y[i] = sum / win.divisor;
}

// Outputs [lo, hi) along one axis whose stride-s, size-k windows (shifted by the
// padding) contain input position v.
fn covering(v: u32, k: u32, s: u32, pad: u32, n_out: u32) -> vec2<u32> {
    let top = i32(v + pad);
    let first = top - i32(k) + 1;
    var lo = 0u;
    if first > 0 {
        lo = (u32(first) + s - 1u) / s;
    }
    let hi = min(u32(top) / s + 1u, n_out);
    return vec2<u32>(lo, max(hi, lo));
}

@compute @workgroup_size(256)
fn avg_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread(gid, nwg);
    if i >= p.n {
        return;
    }
    let q = split(i, p.in_h, p.in_w);
    let rows = covering(q.y, p.k_h, p.s_h, p.p_h, p.out_h);
    let cols = covering(q.z, p.k_w, p.s_w, p.p_w, p.out_w);
    let obase = q.x * p.out_h * p.out_w;
    var acc = 0.0;
    for (var oh = rows.x; oh < rows.y; oh++) {
        for (var ow = cols.x; ow < cols.y; ow++) {
            acc += g[obase + oh * p.out_w + ow] / avg_window(oh, ow).divisor;
        }
    }
    dx[i] = acc;
}

// PyTorch's adaptive bins along one axis: output o covers [floor(o*n/m), ceil((o+1)*n/m)).
fn bin(o: u32, n_in: u32, n_out: u32) -> vec2<u32> {
    return vec2<u32>(o * n_in / n_out, ((o + 1u) * n_in + n_out - 1u) / n_out);
}

@compute @workgroup_size(256)
fn adaptive_avg_pool2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread(gid, nwg);
    if i >= p.n {
        return;
    }
    let o = split(i, p.out_h, p.out_w);
    let rows = bin(o.y, p.in_h, p.out_h);
    let cols = bin(o.z, p.in_w, p.out_w);
    let base = o.x * p.in_h * p.in_w;
    var sum = 0.0;
    for (var h = rows.x; h < rows.y; h++) {
        for (var w = cols.x; w < cols.y; w++) {
            sum += x[base + h * p.in_w + w];
        }
    }
    y[i] = sum / f32((rows.y - rows.x) * (cols.y - cols.x));
}

// The bins holding input position v are outputs [floor(v*m/n), ceil((v+1)*m/n)): the
// bin formula with input and output swapped.
@compute @workgroup_size(256)
fn adaptive_avg_pool2d_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread(gid, nwg);
    if i >= p.n {
        return;
    }
    let q = split(i, p.in_h, p.in_w);
    let rows = bin(q.y, p.out_h, p.in_h);
    let cols = bin(q.z, p.out_w, p.in_w);
    let obase = q.x * p.out_h * p.out_w;
    var acc = 0.0;
    for (var oh = rows.x; oh < rows.y; oh++) {
        let rh = bin(oh, p.in_h, p.out_h);
        for (var ow = cols.x; ow < cols.y; ow++) {
            let rw = bin(ow, p.in_w, p.out_w);
            acc += g[obase + oh * p.out_w + ow] / f32((rh.y - rh.x) * (rw.y - rw.x));
        }
    }
    dx[i] = acc;
}
