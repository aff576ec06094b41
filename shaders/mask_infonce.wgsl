// MaskContrast's InfoNCE, fused: query pixels [B,D,HW], mask [B,HW] (0/1 weights m_i),
// key prototypes [B,D], queue [K,D]. For pixel i of image b with m_i != 0:
//   l_ij = q_i . k_j / T over the B prototypes then the K queue rows,
//   loss_i = lse_i - l_ib,   L = sum_i m_i loss_i / N,   N = sum_i m_i.
// No [pixels x (B+K)] matrix exists: every kernel recomputes the dot products it
// needs, and the forward saves only lse per pixel. Backward (g = dL scalar,
// c = g / (T N), p_ij = exp(l_ij - lse_i)):
//   dq_i = c m_i (sum_j p_ij k_j - k_b)                      (dq, per pixel)
//   dk_j = c sum_i m_i (p_ij - [j == b_i]) q_i, j < B       (key_partial + key_reduce)
// The queue is a memory bank and gets no gradient.
// Each pass has two versions: the reference one reads every value it needs from
// the buffers where it needs it; the `_cached` one (embedding dims up to MAX_D, the
// dim a pipeline constant) first copies a pixel's embedding into registers and sums
// its gradient there, since on lavapipe a buffer access costs far more than the
// multiply-add it feeds. src/loss/mask_infonce.rs tests one against the other.
struct Params {
    b: u32,
    d: u32,
    hw: u32,
    k: u32,
    pixels: u32,
    inv_t: f32,
    // Pixels of one image per key_partial invocation, and chunks per image.
    chunk: u32,
    chunks: u32,
}

@group(0) @binding(0) var<storage, read> query: array<f32>;
@group(0) @binding(1) var<storage, read> mask: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<f32>;
@group(0) @binding(3) var<storage, read> queue: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;
@group(0) @binding(5) var<storage, read_write> term: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;
@group(0) @binding(7) var<storage, read_write> count: array<f32>;
@group(0) @binding(8) var<storage, read> grad: array<f32>;
@group(0) @binding(9) var<storage, read_write> dq: array<f32>;
@group(0) @binding(10) var<storage, read_write> partial: array<f32>;
@group(0) @binding(11) var<storage, read_write> dkeys: array<f32>;
@group(0) @binding(12) var<uniform> p: Params;

// The embedding dim of the `_cached` entry points (at most MAX_D).
override D: u32 = 32u;
const MAX_D = 64u;

var<workgroup> loss_part: array<f32, 256>;
var<workgroup> count_part: array<f32, 256>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// q_i . keys[j] / T, with q_i starting at qbase and strided by HW.
fn key_logit(qbase: u32, j: u32) -> f32 {
    var s = 0.0;
    for (var e = 0u; e < p.d; e++) {
        s += query[qbase + e * p.hw] * keys[j * p.d + e];
    }
    return s * p.inv_t;
}

fn queue_logit(qbase: u32, j: u32) -> f32 {
    var s = 0.0;
    for (var e = 0u; e < p.d; e++) {
        s += query[qbase + e * p.hw] * queue[j * p.d + e];
    }
    return s * p.inv_t;
}

// c = g / (T N), zero when no pixel is salient so nothing becomes NaN.
fn grad_scale() -> f32 {
    let n = count[0];
    return select(0.0, grad[0] * p.inv_t / n, n != 0.0);
}

// One step of an online log-sum-exp: (mx, s) hold the running max and the sum of
// exp(l - mx) so far.
fn add_logit(mx: ptr<function, f32>, s: ptr<function, f32>, l: f32) {
    if l > *mx {
        *s = *s * exp(*mx - l) + 1.0;
        *mx = l;
    } else {
        *s += exp(l - *mx);
    }
}

// One invocation per pixel: an online log-sum-exp over the B + K logits.
@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = index(gid, nwg);
    if t >= p.pixels {
        return;
    }
    let m = mask[t];
    if m == 0.0 {
        lse[t] = 0.0;
        term[t] = 0.0;
        return;
    }
    let b = t / p.hw;
    let qbase = b * p.d * p.hw + (t - b * p.hw);
    var mx = key_logit(qbase, 0u);
    var s = 1.0;
    var pos = mx;
    for (var j = 1u; j < p.b; j++) {
        let l = key_logit(qbase, j);
        if j == b {
            pos = l;
        }
        add_logit(&mx, &s, l);
    }
    for (var j = 0u; j < p.k; j++) {
        add_logit(&mx, &s, queue_logit(qbase, j));
    }
    let z = mx + log(s);
    lse[t] = z;
    term[t] = m * (z - pos);
}

// One workgroup: loss = sum(term) / N and count = N.
@compute @workgroup_size(256)
fn reduce(@builtin(local_invocation_index) lid: u32) {
    var l = 0.0;
    var n = 0.0;
    for (var t = lid; t < p.pixels; t += 256u) {
        l += term[t];
        n += mask[t];
    }
    loss_part[lid] = l;
    count_part[lid] = n;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            loss_part[lid] += loss_part[lid + s];
            count_part[lid] += count_part[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        let total = count_part[0];
        loss[0] = select(0.0, loss_part[0] / total, total != 0.0);
        count[0] = total;
    }
}

// One invocation per pixel; accumulates sum_j p_ij k_j in its own dq entries.
@compute @workgroup_size(256)
fn query_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = index(gid, nwg);
    if t >= p.pixels {
        return;
    }
    let b = t / p.hw;
    let qbase = b * p.d * p.hw + (t - b * p.hw);
    let m = mask[t];
    for (var e = 0u; e < p.d; e++) {
        dq[qbase + e * p.hw] = 0.0;
    }
    if m == 0.0 {
        return;
    }
    let z = lse[t];
    for (var j = 0u; j < p.b; j++) {
        let pj = exp(key_logit(qbase, j) - z);
        for (var e = 0u; e < p.d; e++) {
            dq[qbase + e * p.hw] += pj * keys[j * p.d + e];
        }
    }
    for (var j = 0u; j < p.k; j++) {
        let pj = exp(queue_logit(qbase, j) - z);
        for (var e = 0u; e < p.d; e++) {
            dq[qbase + e * p.hw] += pj * queue[j * p.d + e];
        }
    }
    let c = grad_scale() * m;
    for (var e = 0u; e < p.d; e++) {
        let i = qbase + e * p.hw;
        dq[i] = c * (dq[i] - keys[b * p.d + e]);
    }
}

// One invocation per (image, pixel chunk, key j): the chunk's share of
// sum_i m_i (p_ij - [j == b_i]) q_i into partial[(image * chunks + chunk) * B + j].
@compute @workgroup_size(256)
fn key_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let inv = index(gid, nwg);
    if inv >= p.b * p.chunks * p.b {
        return;
    }
    let bc = inv / p.b;
    let j = inv - bc * p.b;
    let img = bc / p.chunks;
    let start = (bc - img * p.chunks) * p.chunk;
    let end = min(start + p.chunk, p.hw);
    let out = inv * p.d;
    for (var e = 0u; e < p.d; e++) {
        partial[out + e] = 0.0;
    }
    let positive = select(0.0, 1.0, j == img);
    for (var px = start; px < end; px++) {
        let t = img * p.hw + px;
        let m = mask[t];
        if m == 0.0 {
            continue;
        }
        let qbase = img * p.d * p.hw + px;
        let coef = m * (exp(key_logit(qbase, j) - lse[t]) - positive);
        for (var e = 0u; e < p.d; e++) {
            partial[out + e] += coef * query[qbase + e * p.hw];
        }
    }
}

// One invocation per key element: sums the chunks' partials and applies c.
@compute @workgroup_size(256)
fn key_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = index(gid, nwg);
    let n = p.b * p.d;
    if e >= n {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.b * p.chunks; r++) {
        s += partial[r * n + e];
    }
    dkeys[e] = grad_scale() * s;
}

// A pixel's embedding (D values strided by HW from qbase), in registers.
fn cached_query(qbase: u32) -> array<f32, MAX_D> {
    var q: array<f32, MAX_D>;
    for (var e = 0u; e < D; e++) {
        q[e] = query[qbase + e * p.hw];
    }
    return q;
}

fn cached_key_logit(q: ptr<function, array<f32, MAX_D>>, j: u32) -> f32 {
    var s = 0.0;
    for (var e = 0u; e < D; e++) {
        s += (*q)[e] * keys[j * D + e];
    }
    return s * p.inv_t;
}

fn cached_queue_logit(q: ptr<function, array<f32, MAX_D>>, j: u32) -> f32 {
    var s = 0.0;
    for (var e = 0u; e < D; e++) {
        s += (*q)[e] * queue[j * D + e];
    }
    return s * p.inv_t;
}

// `forward` with the pixel's embedding in registers.
@compute @workgroup_size(256)
fn forward_cached(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = index(gid, nwg);
    if t >= p.pixels {
        return;
    }
    let m = mask[t];
    if m == 0.0 {
        lse[t] = 0.0;
        term[t] = 0.0;
        return;
    }
    let b = t / p.hw;
    var q = cached_query(b * D * p.hw + (t - b * p.hw));
    var mx = cached_key_logit(&q, 0u);
    var s = 1.0;
    var pos = mx;
    for (var j = 1u; j < p.b; j++) {
        let l = cached_key_logit(&q, j);
        if j == b {
            pos = l;
        }
        add_logit(&mx, &s, l);
    }
    for (var j = 0u; j < p.k; j++) {
        add_logit(&mx, &s, cached_queue_logit(&q, j));
    }
    let z = mx + log(s);
    lse[t] = z;
    term[t] = m * (z - pos);
}

// `query_grad` with the embedding and its gradient in registers.
@compute @workgroup_size(256)
fn query_grad_cached(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = index(gid, nwg);
    if t >= p.pixels {
        return;
    }
    let b = t / p.hw;
    let qbase = b * D * p.hw + (t - b * p.hw);
    let m = mask[t];
    if m == 0.0 {
        for (var e = 0u; e < D; e++) {
            dq[qbase + e * p.hw] = 0.0;
        }
        return;
    }
    var q = cached_query(qbase);
    var acc: array<f32, MAX_D>;
    let z = lse[t];
    for (var j = 0u; j < p.b; j++) {
        let pj = exp(cached_key_logit(&q, j) - z);
        for (var e = 0u; e < D; e++) {
            acc[e] += pj * keys[j * D + e];
        }
    }
    for (var j = 0u; j < p.k; j++) {
        let pj = exp(cached_queue_logit(&q, j) - z);
        for (var e = 0u; e < D; e++) {
            acc[e] += pj * queue[j * D + e];
        }
    }
    let c = grad_scale() * m;
    for (var e = 0u; e < D; e++) {
        dq[qbase + e * p.hw] = c * (acc[e] - keys[b * D + e]);
    }
}

// `key_partial` with each pixel's embedding and the chunk's sum in registers.
@compute @workgroup_size(256)
fn key_partial_cached(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let inv = index(gid, nwg);
    if inv >= p.b * p.chunks * p.b {
        return;
    }
    let bc = inv / p.b;
    let j = inv - bc * p.b;
    let img = bc / p.chunks;
    let start = (bc - img * p.chunks) * p.chunk;
    let end = min(start + p.chunk, p.hw);
    let positive = select(0.0, 1.0, j == img);
    var acc: array<f32, MAX_D>;
    for (var px = start; px < end; px++) {
        let t = img * p.hw + px;
        let m = mask[t];
        if m == 0.0 {
            continue;
        }
        var q = cached_query(img * D * p.hw + px);
        let coef = m * (exp(cached_key_logit(&q, j) - lse[t]) - positive);
        for (var e = 0u; e < D; e++) {
            acc[e] += coef * q[e];
        }
    }
    for (var e = 0u; e < D; e++) {
        partial[inv * D + e] = acc[e];
    }
}
