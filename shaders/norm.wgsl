// batch, instance, group and layer normalisation, forward and backward.
//
// The input is viewed as `rows` rows of `row_len` contiguous elements: (n, c) planes
// of length H*W for the channel norms, rows of the normalised trailing dims for
// layer_norm. A normalisation group is `count` rows, row r = g * group_div + t * stride
// (t < count), so row r belongs to group (r / group_div) % groups:
//   batch_norm     groups C,     group_div 1,   stride C, count N
//   instance_norm  groups N*C,   group_div 1,   stride 1, count 1
//   group_norm     groups N*G,   group_div C/G, stride 1, count C/G
//   layer_norm     groups rows,  group_div 1,   stride 1, count 1
// Row r's channel (its weight and bias) is r % channels (channels is 1 for layer_norm,
// whose affine runs along the row instead).
//
// Reductions go per row first (one invocation per row, or one workgroup per row for
// long rows) and then per group over its few rows, so no kernel divides per element
// inside a reduction. Elementwise kernels read one vec4 of coefficients per row:
//   forward:  y  = act(coef.y * (x - coef.x) + coef.z)
//   backward: dx = coef.y * (x - coef.x) + coef.z + coef.w * u
// where batch_norm's fused activation act is none, ReLU or ReLU6, and u is the output
// gradient behind it (the backward reductions read u behind it too).
struct Params {
    rows: u32,
    row_len: u32,
    groups: u32,
    group_div: u32,
    stride: u32,
    count: u32,
    channels: u32,
    total: u32,
    eps: f32,
    momentum: f32,
    // The activation after the affine (batch_norm's fused ReLU or ReLU6): 0 none,
    // 1 relu, 2 relu6.
    act: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> u: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> var_: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> b: array<f32>;
@group(0) @binding(6) var<storage, read> pa: array<f32>;
@group(0) @binding(7) var<storage, read> pb: array<f32>;
@group(0) @binding(8) var<storage, read> coef: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(10) var<storage, read_write> out_b: array<f32>;
@group(0) @binding(11) var<storage, read_write> coef_out: array<vec4<f32>>;
@group(0) @binding(12) var<storage, read_write> y: array<f32>;
@group(0) @binding(13) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(14) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(15) var<uniform> p: Params;
// The activated output in the backward, whose gradient mask it gives (the input when
// there is no activation, unread).
@group(0) @binding(16) var<storage, read> act_out: array<f32>;

var<workgroup> partial: array<vec2<f32>, 256>;

// #include is_finite
// #include is_nan

// NaN passes through as in torch's relu and relu6.
fn activate(v: f32) -> f32 {
    switch p.act {
        case 1u: { return select(max(v, 0.0), v, is_nan(v)); }
        case 2u: { return select(clamp(v, 0.0, 6.0), v, is_nan(v)); }
        default: { return v; }
    }
}

// The output gradient behind the activation: g where the activation passed its input
// through, read off the activated output o (0 < o < 6 exactly where 0 < input < 6).
fn behind_activation(g: f32, o: f32) -> f32 {
    switch p.act {
        case 1u: { return select(0.0, g, o > 0.0); }
        case 2u: { return select(0.0, g, o > 0.0 && o < 6.0); }
        default: { return g; }
    }
}

fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn group_of(r: u32) -> u32 {
    return (r / p.group_div) % p.groups;
}

fn rstd(g: u32) -> f32 {
    return 1.0 / sqrt(var_[g] + p.eps);
}

// Sum of `v` over the workgroup, returned to every invocation.
fn workgroup_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
    partial[lid] = v;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

// Per row: its mean (out_a) and sum of squared deviations (out_b), in two passes.
@compute @workgroup_size(256)
fn row_moments(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = thread_index(gid, nwg);
    if r >= p.rows {
        return;
    }
    let base = r * p.row_len;
    var s = 0.0;
    for (var k = 0u; k < p.row_len; k++) {
        s += x[base + k];
    }
    let m = s / f32(p.row_len);
    var q = 0.0;
    for (var k = 0u; k < p.row_len; k++) {
        let d = x[base + k] - m;
        q += d * d;
    }
    out_a[r] = m;
    out_b[r] = q;
}

@compute @workgroup_size(256)
fn row_moments_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if r >= p.rows {
        return;
    }
    let base = r * p.row_len;
    // One pass and one reduction (a barrier costs lavapipe more than the loads): sums
    // of deviations from the row's first element, which keeps the variance accurate
    // when the mean is far from 0.
    let shift = x[base];
    var s = vec2<f32>(0.0);
    for (var k = lid; k < p.row_len; k += 256u) {
        let d = x[base + k] - shift;
        s += vec2<f32>(d, d * d);
    }
    let total = workgroup_sum(lid, s);
    if lid == 0u {
        let n = f32(p.row_len);
        out_a[r] = shift + total.x / n;
        out_b[r] = max(total.y - total.x * total.x / n, 0.0);
    }
}

// Group g's mean and biased variance from its rows' moments (pa, pb), merged exactly
// (Chan et al.) since every row has row_len elements.
fn merged_moments(g: u32) -> vec2<f32> {
    let first = g * p.group_div;
    var s = 0.0;
    for (var t = 0u; t < p.count; t++) {
        s += pa[first + t * p.stride];
    }
    let m = s / f32(p.count);
    var q = 0.0;
    for (var t = 0u; t < p.count; t++) {
        let r = first + t * p.stride;
        let d = pa[r] - m;
        q += pb[r] + f32(p.row_len) * d * d;
    }
    return vec2<f32>(m, q / (f32(p.count) * f32(p.row_len)));
}

// Group g's statistics (out_a, out_b) and the forward coefficients of its rows:
// (mean, rstd * weight, bias, 0). One kernel for what needs only the group's values,
// since on lavapipe a dispatch of a few hundred invocations costs more than its work.
fn write_group_coef(g: u32) -> vec2<f32> {
    let mv = merged_moments(g);
    out_a[g] = mv.x;
    out_b[g] = mv.y;
    let rs = 1.0 / sqrt(mv.y + p.eps);
    let first = g * p.group_div;
    for (var t = 0u; t < p.count; t++) {
        let r = first + t * p.stride;
        let c = r % p.channels;
        coef_out[r] = vec4<f32>(mv.x, rs * w[c], b[c], 0.0);
    }
    return mv;
}

@compute @workgroup_size(256)
fn group_coef(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = thread_index(gid, nwg);
    if g >= p.groups {
        return;
    }
    write_group_coef(g);
}

// group_coef for batch_norm in training with running statistics, updated in place
// (group g is channel g); the variance enters them unbiased.
@compute @workgroup_size(256)
fn group_coef_running(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = thread_index(gid, nwg);
    if g >= p.groups {
        return;
    }
    let mv = write_group_coef(g);
    // A batch whose statistics are not finite (a step output.on_nonfinite: skip
    // drops) leaves the running statistics as they were.
    if !is_finite(mv.x) || !is_finite(mv.y) {
        return;
    }
    let n = f32(p.count) * f32(p.row_len);
    let m = p.momentum;
    run_mean[g] = (1.0 - m) * run_mean[g] + m * mv.x;
    run_var[g] = (1.0 - m) * run_var[g] + m * mv.y * n / (n - 1.0);
}

// Forward coefficients of each row: (mean, rstd * weight, bias, 0).
@compute @workgroup_size(256)
fn coef_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = thread_index(gid, nwg);
    if r >= p.rows {
        return;
    }
    let g = group_of(r);
    let c = r % p.channels;
    coef_out[r] = vec4<f32>(mean[g], rstd(g) * w[c], b[c], 0.0);
}

@compute @workgroup_size(256)
fn apply_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.total {
        return;
    }
    let c = coef[i / p.row_len];
    y[i] = activate(c.y * (x[i] - c.x) + c.z);
}

// layer_norm's forward: the row's coefficients normalise, weight and bias run along it.
@compute @workgroup_size(256)
fn apply_cols(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.total {
        return;
    }
    let r = i / p.row_len;
    let j = i - r * p.row_len;
    let c = coef[r];
    y[i] = (c.y * (x[i] - c.x) + c.z) * w[j] + b[j];
}

// Per row: sum(u) (out_a) and sum(u * xhat) (out_b), xhat normalised by the row's group.
@compute @workgroup_size(256)
fn row_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = thread_index(gid, nwg);
    if r >= p.rows {
        return;
    }
    let g = group_of(r);
    let m = mean[g];
    let rs = rstd(g);
    let base = r * p.row_len;
    var acc = vec2<f32>(0.0);
    for (var k = 0u; k < p.row_len; k++) {
        let v = behind_activation(u[base + k], act_out[base + k]);
        acc += vec2<f32>(v, v * (x[base + k] - m) * rs);
    }
    out_a[r] = acc.x;
    out_b[r] = acc.y;
}

@compute @workgroup_size(256)
fn row_sums_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = wid.x + wid.y * nwg.x;
    if r >= p.rows {
        return;
    }
    let g = group_of(r);
    let m = mean[g];
    let rs = rstd(g);
    let base = r * p.row_len;
    var acc = vec2<f32>(0.0);
    for (var k = lid; k < p.row_len; k += 256u) {
        let v = behind_activation(u[base + k], act_out[base + k]);
        acc += vec2<f32>(v, v * (x[base + k] - m) * rs);
    }
    let total = workgroup_sum(lid, acc);
    if lid == 0u {
        out_a[r] = total.x;
        out_b[r] = total.y;
    }
}

// Per group, from its rows' sums of u and u * xhat (pa, pb): the backward
// coefficients of its rows, dx = rstd * (g*w - sum(g*w)/n - xhat * sum(g*w*xhat)/n)
// over the group's n elements, and the group's unweighted sums (out_a: sum(u * xhat),
// out_b: sum(u)), which are batch_norm's weight and bias gradients (its groups are
// its channels).
@compute @workgroup_size(256)
fn group_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = thread_index(gid, nwg);
    if g >= p.groups {
        return;
    }
    let first = g * p.group_div;
    var weighted = vec2<f32>(0.0);
    var plain = vec2<f32>(0.0);
    for (var t = 0u; t < p.count; t++) {
        let r = first + t * p.stride;
        let sums = vec2<f32>(pa[r], pb[r]);
        weighted += w[r % p.channels] * sums;
        plain += sums;
    }
    out_a[g] = plain.y;
    out_b[g] = plain.x;
    let rs = rstd(g);
    let n = f32(p.count) * f32(p.row_len);
    for (var t = 0u; t < p.count; t++) {
        let r = first + t * p.stride;
        coef_out[r] = vec4<f32>(mean[g], -rs * rs * weighted.y / n, -rs * weighted.x / n, rs * w[r % p.channels]);
    }
}

@compute @workgroup_size(256)
fn grad_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.total {
        return;
    }
    let c = coef[i / p.row_len];
    y[i] = c.y * (x[i] - c.x) + c.z + c.w * behind_activation(u[i], act_out[i]);
}
