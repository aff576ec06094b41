// Depthwise conv2d (groups = C_in = C_out, as MobileNetV2's 3x3 layers): the forward
// and the input and weight gradients of conv2d.wgsl's direct kernels, for this case
// alone. A depthwise layer has one input channel per output, so the direct kernels'
// channel blocks hold a single channel and their workgroups, one per (channel, image),
// are mostly idle lanes on small maps. Here every invocation is a block of PIX
// adjacent pixels of one row, on a flat index over all images, channels and rows, so
// every workgroup is full; and a block loads each input value its taps share once (a
// row's window) and its weights once, since on lavapipe a load costs far more than
// the multiply-add it feeds (a padded copy of the input, to drop the bounds masks,
// cost more than it saved: the copy is itself a pass of loads and stores).
// #include conv2d_params

// The kernel, its stride and dilation, and the launch layout, as constants: the tap
// and pixel loops then have fixed trip counts (so the arrays below can live in
// registers), and the divisions that take a flat index apart compile to multiplies
// (lavapipe runs an integer division by a uniform lane by lane).
override KH: u32 = 3u;
override KW: u32 = 3u;
override SH: u32 = 1u;
override SW: u32 = 1u;
override DH: u32 = 1u;
override DW: u32 = 1u;
// Adjacent pixels of a row per invocation (4 or 8), and the rows and pixel blocks
// per row of the maps an entry point walks (forward and weight_grad: the output's;
// input_grad: the input's, its blocks grouped by column residue mod SW).
override PIX: u32 = 4u;
override ROWS: u32 = 1u;
override BLOCKS: u32 = 1u;
override HAS_BIAS: bool = false;

// Sizes of the register arrays: taps (KH * KW <= 9) and a row's window of input
// values, (PIX - 1) * SW + (KW - 1) * DW + 1 <= 24 (src/ops/conv2d/depthwise.rs
// keeps larger layers on the direct kernels).
const MAX_TAPS = 9u;
const MAX_WINDOW = 24u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
// forward: the bias (any buffer without one).
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 64u;
}

// One unit: PIX pixels of one row of one (image, channel) map.
struct Unit {
    // image * channels + channel: the map's index in [N, C, ., .] tensors
    map: u32,
    row: u32,
    block: u32,
}

fn unit_of(t: u32) -> Unit {
    let r = t / BLOCKS;
    return Unit(r / ROWS, r % ROWS, t % BLOCKS);
}

fn taps_of(channel: u32) -> array<f32, MAX_TAPS> {
    var w: array<f32, MAX_TAPS>;
    for (var i = 0u; i < KH * KW; i++) {
        w[i] = wt[channel * KH * KW + i];
    }
    return w;
}

// The `count` values of row `ih` of map `base` (h x w) from column `iw0` on, zero
// outside the map: what every tap of a row of PIX pixels reads, loaded once.
fn window(base: u32, ih: i32, iw0: i32, count: u32) -> array<f32, MAX_WINDOW> {
    var v: array<f32, MAX_WINDOW>;
    let row_ok = u32(ih) < p.h;
    let row = base + u32(ih) * p.w;
    for (var i = 0u; i < count; i++) {
        let iw = iw0 + i32(i);
        let ok = row_ok && u32(iw) < p.w;
        v[i] = select(0.0, src[select(0u, row + u32(iw), ok)], ok);
    }
    return v;
}

// y[n, c, oh, ow] = sum over taps of x[n, c, oh*SH - ph + ky*DH, ow*SW - pw + kx*DW]
// * w[c, ky, kx] (+ bias[c]); src = x, dst = y. x: units (2-D past 65535 groups).
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_id(gid, nwg);
    if t >= p.units {
        return;
    }
    let u = unit_of(t);
    let channel = u.map % p.cout;
    let w = taps_of(channel);
    let ow0 = u.block * PIX;
    let ih0 = i32(u.row * SH) - i32(p.ph);
    let iw0 = i32(ow0 * SW) - i32(p.pw);
    let span = (PIX - 1u) * SW + (KW - 1u) * DW + 1u;
    var acc: array<f32, 8>;
    for (var ky = 0u; ky < KH; ky++) {
        let v = window(u.map * p.h * p.w, ih0 + i32(ky * DH), iw0, span);
        for (var kx = 0u; kx < KW; kx++) {
            for (var j = 0u; j < PIX; j++) {
                acc[j] += v[j * SW + kx * DW] * w[ky * KW + kx];
            }
        }
    }
    var shift = 0.0;
    if HAS_BIAS {
        shift = bias[channel];
    }
    let base = (u.map * p.hout + u.row) * p.wout + ow0;
    let pixels = min(PIX, p.wout - ow0);
    for (var j = 0u; j < pixels; j++) {
        dst[base + j] = acc[j] + shift;
    }
}

// dx[n, c, ih, iw] = sum over the taps that reach it of gy[n, c, oh, ow] * w[c, ky, kx],
// where oh*SH = ih + ph - ky*DH and ow*SW = iw + pw - kx*DW; src = gy, dst = dx. A
// unit's PIX input columns share their residue mod SW (columns res + SW * (block * PIX
// + j)), so each tap reaches all of them or none, at adjacent output columns.
// x: units (2-D past 65535 groups).
@compute @workgroup_size(64)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = flat_id(gid, nwg);
    if t >= p.units {
        return;
    }
    let u = unit_of(t);
    let w = taps_of(u.map % p.cout);
    let res = u.block % SW;
    let first = (u.block / SW) * PIX;
    // Lifts keep the numerators below non-negative: a multiple of the stride added,
    // so divisibility is unchanged, and subtracted again from the quotient.
    let shift_h = ((KH - 1u) * DH + SH - 1u) / SH;
    let shift_w = ((KW - 1u) * DW + SW - 1u) / SW;
    let base = u.map * p.hout * p.wout;
    var acc: array<f32, 8>;
    for (var ky = 0u; ky < KH; ky++) {
        let num_h = u.row + p.ph + shift_h * SH - ky * DH;
        let oh = num_h / SH - shift_h;
        if num_h % SH != 0u || oh >= p.hout {
            continue;
        }
        for (var kx = 0u; kx < KW; kx++) {
            let num_w = res + p.pw + shift_w * SW - kx * DW;
            if num_w % SW != 0u {
                continue;
            }
            let ow0 = num_w / SW - shift_w + first;
            let row = base + oh * p.wout;
            for (var j = 0u; j < PIX; j++) {
                let ow = ow0 + j;
                let ok = ow < p.wout;
                acc[j] += select(0.0, src[select(0u, row + ow, ok)], ok) * w[ky * KW + kx];
            }
        }
    }
    let row = (u.map * p.h + u.row) * p.w;
    for (var j = 0u; j < PIX; j++) {
        let iw = res + SW * (first + j);
        if iw < p.w {
            dst[row + iw] = acc[j];
        }
    }
}

// Per-invocation sums of weight_grad, one per tap.
var<workgroup> partial: array<array<f32, MAX_TAPS>, 64>;

// gw[c, ky, kx] = sum over n, oh, ow of gy[n, c, oh, ow] * x[n, c, ih, iw]: one
// workgroup per channel; its 64 invocations split the (image, row, pixel block) units,
// each keeps all KH * KW sums, and the partial sums meet once at the end. src = x
// (read through `window` as in the forward), wt = gy, dst = gw. x: channels.
@compute @workgroup_size(64)
fn weight_grad(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let c = wid.x;
    let span = (PIX - 1u) * SW + (KW - 1u) * DW + 1u;
    var acc: array<f32, MAX_TAPS>;
    for (var q = li; q < p.n * ROWS * BLOCKS; q += 64u) {
        let r = q / BLOCKS;
        let oh = r % ROWS;
        let map = (r / ROWS) * p.cout + c;
        let ow0 = (q % BLOCKS) * PIX;
        var g: array<f32, 8>;
        let gy_row = (map * p.hout + oh) * p.wout;
        for (var j = 0u; j < PIX; j++) {
            let ok = ow0 + j < p.wout;
            g[j] = select(0.0, wt[select(0u, gy_row + ow0 + j, ok)], ok);
        }
        let ih0 = i32(oh * SH) - i32(p.ph);
        let iw0 = i32(ow0 * SW) - i32(p.pw);
        for (var ky = 0u; ky < KH; ky++) {
            let v = window(map * p.h * p.w, ih0 + i32(ky * DH), iw0, span);
            for (var kx = 0u; kx < KW; kx++) {
                for (var j = 0u; j < PIX; j++) {
                    acc[ky * KW + kx] += v[j * SW + kx * DW] * g[j];
                }
            }
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    if li < KH * KW {
        var total = 0.0;
        for (var l = 0u; l < 64u; l++) {
            total += partial[l][li];
        }
        dst[c * KH * KW + li] = total;
    }
}
