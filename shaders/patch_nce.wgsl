// PatchNCE (CUT): for rows i of query q [N, D] and key k [N, D], s_ij = q_i . k_j / T and
// loss = mean_i (logsumexp_j s_ij - s_ii): cross-entropy with the positive k_i against
// the other rows' keys as negatives. One invocation per row, nothing [N, N] stored:
// the backward recomputes s_ij from the saved per-row log-sum-exp. With
// w_ij = g / N * (softmax_j(s_i)_j - [i == j]):
//   dq_i = sum_j w_ij k_j / T,  dk_j = sum_i w_ij q_i / T.
// A row whose positive dominates has a loss near 0: it is formed as log1p of the
// other terms and w_ii as expm1(-loss), not as differences of nearly equal numbers.
struct Params {
    n: u32,
    dim: u32,
    inv_t: f32,
    inv_n: f32,
}

@group(0) @binding(0) var<storage, read> query: array<f32>;
@group(0) @binding(1) var<storage, read> key: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> loss_row: array<f32>;
@group(0) @binding(4) var<storage, read> loss_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss_out: array<f32>;
@group(0) @binding(6) var<storage, read> lse: array<f32>;
@group(0) @binding(7) var<storage, read> gout: array<f32>;
@group(0) @binding(8) var<storage, read_write> gq: array<f32>;
@group(0) @binding(9) var<storage, read_write> gk: array<f32>;
@group(0) @binding(10) var<uniform> p: Params;

var<workgroup> red: array<f32, 256>;

fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// log(1 + x) to full relative precision for small x. log() itself is only
// accurate to ~2^-21 absolute near 1 on some drivers (lavapipe), so small x go
// through log1p(x) = 2 atanh(x / (2 + x)) as a series.
fn log1p(x: f32) -> f32 {
    if x >= 1.0 {
        return log(1.0 + x);
    }
    let y = x / (2.0 + x);
    let y2 = y * y;
    var term = y;
    var acc = 0.0;
    for (var k = 1.0; k < 24.0; k += 2.0) {
        acc += term / k;
        term *= y2;
    }
    return 2.0 * acc;
}

// exp(x) - 1 to full relative precision for small |x| (Taylor series there).
fn expm1(x: f32) -> f32 {
    if abs(x) >= 0.5 {
        return exp(x) - 1.0;
    }
    var term = x;
    var acc = 0.0;
    for (var k = 2.0; k < 16.0; k += 1.0) {
        acc += term;
        term *= x / k;
    }
    return acc;
}

fn logit(i: u32, j: u32) -> f32 {
    var acc = 0.0;
    for (var d = 0u; d < p.dim; d++) {
        acc += query[i * p.dim + d] * key[j * p.dim + d];
    }
    return acc * p.inv_t;
}

@compute @workgroup_size(256)
fn row_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.n {
        return;
    }
    // Online log-sum-exp: m is the running max, t the sum of exp(z - m) over every
    // term but the max itself, so lse = m + log1p(t).
    var m = 0.0;
    var t = 0.0;
    var pos = 0.0;
    for (var j = 0u; j < p.n; j++) {
        let z = logit(i, j);
        if j == 0u {
            m = z;
        } else if z > m {
            t = (t + 1.0) * exp(m - z);
            m = z;
        } else {
            t += exp(z - m);
        }
        if j == i {
            pos = z;
        }
    }
    let tail = log1p(t);
    lse_out[i] = m + tail;
    loss_row[i] = (m - pos) + tail;
}

// One workgroup: the mean of the row losses.
@compute @workgroup_size(256)
fn reduce_mean(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    for (var i = lid; i < p.n; i += 256u) {
        acc += loss_in[i];
    }
    red[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        loss_out[0] = red[0] * p.inv_n;
    }
}

fn weight(i: u32, j: u32) -> f32 {
    // softmax_ii - 1 = exp(-loss_i) - 1.
    var w = expm1(-loss_in[i]);
    if i != j {
        w = exp(logit(i, j) - lse[i]);
    }
    return gout[0] * p.inv_n * p.inv_t * w;
}

@compute @workgroup_size(256)
fn grad_query(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.n {
        return;
    }
    for (var d = 0u; d < p.dim; d++) {
        gq[i * p.dim + d] = 0.0;
    }
    for (var j = 0u; j < p.n; j++) {
        let w = weight(i, j);
        for (var d = 0u; d < p.dim; d++) {
            gq[i * p.dim + d] += w * key[j * p.dim + d];
        }
    }
}

@compute @workgroup_size(256)
fn grad_key(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = thread_index(gid, nwg);
    if j >= p.n {
        return;
    }
    for (var d = 0u; d < p.dim; d++) {
        gk[j * p.dim + d] = 0.0;
    }
    for (var i = 0u; i < p.n; i++) {
        let w = weight(i, j);
        for (var d = 0u; d < p.dim; d++) {
            gk[j * p.dim + d] += w * query[i * p.dim + d];
        }
    }
}
