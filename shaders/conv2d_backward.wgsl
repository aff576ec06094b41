// Gradients of conv2d (shaders/conv2d.wgsl) with respect to its input and its weight;
// the bias gradient is a plain sum of the output gradient (shaders/reduce.wgsl).
// As in the forward, per-lane loads dominate on lavapipe, so each invocation keeps a
// block of sums in registers that reuses every loaded value several times.
// #include conv2d_params

// input_grad: input channels per invocation, 1 (one channel per group) or 4.
override CB: u32 = 4u;
// weight_grad: output channels (1, 4 or 8) and input channels (1 or 4) per workgroup.
override CO: u32 = 4u;
override CI: u32 = 4u;

@group(0) @binding(0) var<storage, read> gy: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> gw: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const LANES = vec4<u32>(0u, 1u, 2u, 3u);

// gx[n, ci, ih, iw] = sum over co in ci's group and taps (ky, kx) with
// ih + ph - ky*dh = oh*sh and iw + pw - kx*dw = ow*sw of gy[n, co, oh, ow] * w[co, ci, ky, kx]:
// a transposed convolution as a gather. An invocation covers CB input channels and
// 4 input columns r + sw*q (q consecutive) of one row: columns with one residue r mod
// sw meet the stride on the same taps and read consecutive output columns.
// x: pixel blocks of all rows; y: groups x channel blocks; z: batch.
@compute @workgroup_size(64)
fn input_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = gid.x;
    if t >= p.units {
        return;
    }
    let n = wid.z;
    let g = wid.y / p.cblocks;
    let first = (wid.y % p.cblocks) * CB;
    let channels = min(CB, p.cg - first);
    let ci0 = g * p.cg + first;
    let ih = t / p.wblocks;
    let qblocks = p.wblocks / p.sw;
    let r = (t % p.wblocks) / qblocks;
    let q0 = (t % qblocks) * 4u;
    let taps = p.kh * p.kw;
    let ohw = p.hout * p.wout;
    let gy_base = (n * p.cout + g * p.coutg) * ohw;
    // Channels past the group's end repeat its last one; their sums are not stored.
    let w_base = (vec4<u32>(g * p.coutg * p.cg + first) + min(LANES, vec4<u32>(channels - 1u))) * taps;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let a = i32(ih + p.ph) - i32(ky * p.dh);
        let oh = a / i32(p.sh);
        let row_ok = a >= 0 && a % i32(p.sh) == 0 && u32(oh) < p.hout;
        for (var kx = 0u; kx < p.kw; kx++) {
            let b = i32(r + p.pw) - i32(kx * p.dw);
            let ow = vec4<i32>(b / i32(p.sw) + i32(q0)) + vec4<i32>(LANES);
            let ok = (vec4<u32>(ow) < vec4<u32>(p.wout)) & vec4<bool>(row_ok && b % i32(p.sw) == 0);
            if any(ok) {
                var go = gy_base + select(vec4<u32>(0u), vec4<u32>(u32(oh) * p.wout) + vec4<u32>(ow), ok);
                var wo = w_base + vec4<u32>(ky * p.kw + kx);
                for (var co = 0u; co < p.coutg; co++) {
                    let gv = select(vec4<f32>(0.0), vec4<f32>(gy[go.x], gy[go.y], gy[go.z], gy[go.w]), ok);
                    acc0 += wt[wo.x] * gv;
                    if CB > 1u {
                        acc1 += wt[wo.y] * gv;
                        acc2 += wt[wo.z] * gv;
                        acc3 += wt[wo.w] * gv;
                    }
                    go += vec4<u32>(ohw);
                    wo += vec4<u32>(p.cg * taps);
                }
            }
        }
    }
    let acc = mat4x4<f32>(acc0, acc1, acc2, acc3);
    for (var c = 0u; c < channels; c++) {
        let row = ((n * p.cin + ci0 + c) * p.h + ih) * p.w;
        for (var j = 0u; j < 4u; j++) {
            let iw = r + p.sw * (q0 + j);
            if iw < p.w {
                gx[row + iw] = acc[c][j];
            }
        }
    }
}

// The outputs o in [0, count) whose tap o*stride + offset lies in [0, size), as
// [first, end).
fn valid_range(offset: i32, stride: u32, size: u32, count: u32) -> vec2<u32> {
    let s = i32(stride);
    let lo = select(0, (s - 1 - offset) / s, offset < 0);
    let top = i32(size) - 1 - offset;
    let hi = select(0, top / s + 1, top >= 0);
    return vec2<u32>(u32(min(lo, i32(count))), u32(clamp(hi, 0, i32(count))));
}

// Per-invocation sums of weight_grad, 8 output channels x 4 input channels each.
var<workgroup> partial: array<vec4<f32>, 512>;

// weight_grad on small output maps (a few pixels per image, as ASPP's at output stride
// 16): each invocation owns its tap and channel blocks and visits every pixel itself,
// so 8x8 invocations do not split a map smaller than 8x8 and meet at a barrier.
override SERIAL: bool = false;

// gw[co, ci, ky, kx] = sum over n, oh, ow of gy[n, co, oh, ow] * x[n, ci, ih, iw] with
// ih = oh*sh + ky*dh - ph and iw = ow*sw + kx*dw - pw. A workgroup owns CO output
// channels x CI input channels at one tap; its 8x8 invocations split the output
// pixels (8 adjacent columns per SIMD row, so the reads of one step share cache lines)
// and their partial sums are added once at the end (SERIAL: one invocation per tap and
// channel blocks, no split). Only pixels whose tap lies inside the input are visited,
// so the loops need no masks.
// x: taps x input-channel blocks (SERIAL: in workgroups of 64); y: groups x
// output-channel blocks.
@compute @workgroup_size(8, 8)
fn weight_grad(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    // Invocations past the last unit (SERIAL) compute the last one and store nothing;
    // returning early would put the barrier below under non-uniform control.
    let unit = select(wid.x, min(wid.x * 64u + li, p.units - 1u), SERIAL);
    let stores = !SERIAL || wid.x * 64u + li < p.units;
    let split = select(8u, 1u, SERIAL);
    let row0 = select(lid.y, 0u, SERIAL);
    let col0 = select(lid.x, 0u, SERIAL);
    let g = wid.y / p.cblocks;
    let co_first = (wid.y % p.cblocks) * CO;
    let co_count = min(CO, p.coutg - co_first);
    let co0 = g * p.coutg + co_first;
    let ci_blocks = (p.cg + CI - 1u) / CI;
    let tap = unit / ci_blocks;
    let ci0 = (unit % ci_blocks) * CI;
    let ci_count = min(CI, p.cg - ci0);
    let ky = tap / p.kw;
    let kx = tap % p.kw;
    let hw = p.h * p.w;
    let ohw = p.hout * p.wout;
    // Channels past a block's end repeat its last one; their sums are not stored.
    let gy_lo = (vec4<u32>(co0) + min(LANES, vec4<u32>(co_count - 1u))) * ohw;
    let gy_hi = (vec4<u32>(co0) + min(LANES + 4u, vec4<u32>(co_count - 1u))) * ohw;
    let x_ch = (vec4<u32>(g * p.cg + ci0) + min(LANES, vec4<u32>(ci_count - 1u))) * hw;
    let oy = i32(ky * p.dh) - i32(p.ph);
    let ox = i32(kx * p.dw) - i32(p.pw);
    let rows = valid_range(oy, p.sh, p.h, p.hout);
    let cols = valid_range(ox, p.sw, p.w, p.wout);
    // accK holds output channel K for the CI input channels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    for (var n = 0u; n < p.n; n++) {
        let gy_n = n * p.cout * ohw;
        let x_n = n * p.cin * hw;
        for (var oh = rows.x + row0; oh < rows.y; oh += split) {
            let gy_row = gy_n + oh * p.wout;
            let x_row = x_n + u32(i32(oh * p.sh) + oy) * p.w;
            for (var ow = cols.x + col0; ow < cols.y; ow += split) {
                let xo = x_ch + vec4<u32>(x_row + u32(i32(ow * p.sw) + ox));
                var xv = vec4<f32>(x[xo.x], 0.0, 0.0, 0.0);
                if CI > 1u {
                    xv = vec4<f32>(xv.x, x[xo.y], x[xo.z], x[xo.w]);
                }
                let go = gy_lo + vec4<u32>(gy_row + ow);
                acc0 += gy[go.x] * xv;
                if CO > 1u {
                    acc1 += gy[go.y] * xv;
                    acc2 += gy[go.z] * xv;
                    acc3 += gy[go.w] * xv;
                }
                if CO > 4u {
                    let gh = gy_hi + vec4<u32>(gy_row + ow);
                    acc4 += gy[gh.x] * xv;
                    acc5 += gy[gh.y] * xv;
                    acc6 += gy[gh.z] * xv;
                    acc7 += gy[gh.w] * xv;
                }
            }
        }
    }
    let sums = array<vec4<f32>, 8>(acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7);
    if SERIAL {
        if stores {
            for (var c = 0u; c < co_count; c++) {
                for (var i = 0u; i < ci_count; i++) {
                    gw[((co0 + c) * p.cg + ci0 + i) * (p.kh * p.kw) + tap] = sums[c][i];
                }
            }
        }
    } else {
        let b = li * 8u;
        for (var c = 0u; c < 8u; c++) {
            partial[b + c] = sums[c];
        }
        workgroupBarrier();
        // Invocation c * 4 + i adds up output channel c, input channel i.
        let c = li / 4u;
        let i = li % 4u;
        if c < co_count && i < ci_count {
            var total = 0.0;
            for (var l = 0u; l < 64u; l++) {
                total += partial[l * 8u + c][i];
            }
            gw[((co0 + c) * p.cg + ci0 + i) * (p.kh * p.kw) + tap] = total;
        }
    }
}
