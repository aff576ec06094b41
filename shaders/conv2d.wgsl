// conv2d forward as torch.nn.functional.conv2d: x [N, Cin, H, W], weight
// [Cout, Cin/groups, Kh, Kw], optional bias fused into the store. Direct convolution
// with no workgroup memory: each invocation sums CB output channels x 4 adjacent output
// pixels of one row in registers. On lavapipe every load an invocation makes is a
// per-lane scalar load costing far more than a multiply-add, so the block exists to
// reuse each loaded input value CB times and each weight 4 times. Padding and dilation
// are a per-tap mask, and a tap wholly in the padding is skipped.
// #include conv2d_params

// Output channels per invocation: 1 (depthwise, one channel per group) or 4.
override CB: u32 = 4u;
override HAS_BIAS: bool = false;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
// Without a bias, any buffer: it is never read.
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const LANES = vec4<i32>(0, 1, 2, 3);

// x: output columns (wblocks per row) of all rows; y: groups x channel blocks; z: batch.
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = gid.x;
    if t >= p.units {
        return;
    }
    let n = wid.z;
    let g = wid.y / p.cblocks;
    let first = (wid.y % p.cblocks) * CB;
    let channels = min(CB, p.coutg - first);
    let co0 = g * p.coutg + first;
    let oh = t / p.wblocks;
    let ow0 = (t % p.wblocks) * 4u;
    let hw = p.h * p.w;
    let taps = p.kh * p.kw;
    let x_base = (n * p.cin + g * p.cg) * hw;
    // Channels past the group's end repeat its last one; their sums are not stored.
    let w_base = (vec4<u32>(co0) + min(vec4<u32>(LANES), vec4<u32>(channels - 1u))) * (p.cg * taps);
    let ih0 = i32(oh * p.sh) - i32(p.ph);
    let iw0 = vec4<i32>(i32(ow0 * p.sw) - i32(p.pw)) + LANES * i32(p.sw);
    // accK holds output channel K for the 4 pixels.
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.kh; ky++) {
        let ih = ih0 + i32(ky * p.dh);
        let row_ok = u32(ih) < p.h;
        for (var kx = 0u; kx < p.kw; kx++) {
            let iw = iw0 + vec4<i32>(i32(kx * p.dw));
            let ok = (vec4<u32>(iw) < vec4<u32>(p.w)) & vec4<bool>(row_ok);
            if any(ok) {
                var xo = x_base + select(vec4<u32>(0u), vec4<u32>(u32(ih) * p.w) + vec4<u32>(iw), ok);
                var wo = w_base + vec4<u32>(ky * p.kw + kx);
                for (var ci = 0u; ci < p.cg; ci++) {
                    let xv = select(vec4<f32>(0.0), vec4<f32>(x[xo.x], x[xo.y], x[xo.z], x[xo.w]), ok);
                    acc0 += wt[wo.x] * xv;
                    if CB > 1u {
                        acc1 += wt[wo.y] * xv;
                        acc2 += wt[wo.z] * xv;
                        acc3 += wt[wo.w] * xv;
                    }
                    xo += vec4<u32>(hw);
                    wo += vec4<u32>(taps);
                }
            }
        }
    }
    let acc = mat4x4<f32>(acc0, acc1, acc2, acc3);
    let pixels = min(4u, p.wout - ow0);
    for (var c = 0u; c < channels; c++) {
        var shift = 0.0;
        if HAS_BIAS {
            shift = bias[co0 + c];
        }
        let base = ((n * p.cout + co0 + c) * p.hout + oh) * p.wout + ow0;
        for (var j = 0u; j < pixels; j++) {
            y[base + j] = acc[c][j] + shift;
        }
    }
}
