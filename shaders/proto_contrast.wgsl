// Pixel-prototype contrast: L = mean over labelled pixels n of
// CE(softmax_c(scale * cos(x_n, p_c)), y_n), with v normalised as F.normalize does,
// v / max(||v||, EPS). Features are [B, D, HW]; pixel n = b * HW + s reads
// feats[b * D * HW + d * HW + s], so consecutive invocations read consecutive words.
//
// Backward, with w_nc = dL/dcos_nc = g * scale / count * (softmax_nc - [c == y_n]):
//   dx_n = (S_n - (sum_c w_nc cos_nc) xhat_n) / ||x_n||,  S_n = sum_c w_nc phat_c
//   dp_c = (A_c - (phat_c . A_c) phat_c) / ||p_c||,       A_c = sum_n w_nc xhat_n
// (without the projection and over EPS when a norm is clamped). A = W^T Xhat needs
// W as a [C, N] buffer (w_nc / max(||x_n||, EPS)), summed over pixel chunks.
struct Params {
    dim: u32,
    hw: u32,
    classes: u32,
    pixels: u32,
    ignore: u32,
    chunk: u32,
    chunks_per_image: u32,
    partials: u32,
    scale: f32,
    inv_count: f32,
}

const EPS: f32 = 1e-12;

@group(0) @binding(0) var<storage, read> protos: array<f32>;
@group(0) @binding(1) var<storage, read_write> phat_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> pnorm_out: array<f32>;
@group(0) @binding(3) var<storage, read> feats: array<f32>;
@group(0) @binding(4) var<storage, read> phat: array<f32>;
@group(0) @binding(5) var<storage, read> target_: array<u32>;
@group(0) @binding(6) var<storage, read_write> lse_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> loss_px: array<f32>;
@group(0) @binding(8) var<storage, read> loss_in: array<f32>;
@group(0) @binding(9) var<storage, read_write> loss_out: array<f32>;
@group(0) @binding(10) var<storage, read_write> counts: array<u32>;
@group(0) @binding(11) var<storage, read> lse: array<f32>;
@group(0) @binding(12) var<storage, read> gout: array<f32>;
@group(0) @binding(13) var<storage, read_write> gx: array<f32>;
@group(0) @binding(14) var<storage, read_write> wbuf: array<f32>;
@group(0) @binding(15) var<storage, read> wread: array<f32>;
@group(0) @binding(16) var<storage, read_write> partial: array<f32>;
@group(0) @binding(17) var<storage, read> partial_in: array<f32>;
@group(0) @binding(18) var<storage, read> pnorm: array<f32>;
@group(0) @binding(19) var<storage, read_write> gp: array<f32>;
@group(0) @binding(20) var<uniform> p: Params;

var<workgroup> red_loss: array<f32, 256>;
var<workgroup> red_valid: array<u32, 256>;
var<workgroup> red_bad: array<u32, 256>;

fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Offset of pixel n's first feature.
fn pixel_base(n: u32) -> u32 {
    let b = n / p.hw;
    return b * p.dim * p.hw + (n - b * p.hw);
}

fn feature_norm(base: u32) -> f32 {
    var sq = 0.0;
    for (var d = 0u; d < p.dim; d++) {
        let v = feats[base + d * p.hw];
        sq += v * v;
    }
    return sqrt(sq);
}

fn feature_dot(base: u32, c: u32) -> f32 {
    var acc = 0.0;
    for (var d = 0u; d < p.dim; d++) {
        acc += feats[base + d * p.hw] * phat[c * p.dim + d];
    }
    return acc;
}

fn labelled(y: u32) -> bool {
    return y != p.ignore && y < p.classes;
}

// phat_c = p_c / max(||p_c||, EPS); the raw norm is kept for the backward.
@compute @workgroup_size(256)
fn proto_normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = thread_index(gid, nwg);
    if c >= p.classes {
        return;
    }
    var sq = 0.0;
    for (var d = 0u; d < p.dim; d++) {
        let v = protos[c * p.dim + d];
        sq += v * v;
    }
    let nrm = sqrt(sq);
    let inv = 1.0 / max(nrm, EPS);
    for (var d = 0u; d < p.dim; d++) {
        phat_out[c * p.dim + d] = protos[c * p.dim + d] * inv;
    }
    pnorm_out[c] = nrm;
}

// Per pixel: log-sum-exp of the logits (online, one pass over the classes) and the
// pixel's cross-entropy; both 0 for unlabelled pixels.
@compute @workgroup_size(256)
fn pixel_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(gid, nwg);
    if n >= p.pixels {
        return;
    }
    let y = target_[n];
    if !labelled(y) {
        lse_out[n] = 0.0;
        loss_px[n] = 0.0;
        return;
    }
    let base = pixel_base(n);
    let k = p.scale / max(feature_norm(base), EPS);
    var m = 0.0;
    var s = 0.0;
    var zy = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        let z = k * feature_dot(base, c);
        if c == 0u {
            m = z;
            s = 1.0;
        } else if z > m {
            s = s * exp(m - z) + 1.0;
            m = z;
        } else {
            s += exp(z - m);
        }
        if c == y {
            zy = z;
        }
    }
    let l = m + log(s);
    lse_out[n] = l;
    loss_px[n] = l - zy;
}

// One workgroup: the mean loss over labelled pixels, and counts[0] = labelled pixels,
// counts[1] = pixels whose label is neither ignore_index nor a class.
@compute @workgroup_size(256)
fn reduce_loss(@builtin(local_invocation_index) lid: u32) {
    var acc = 0.0;
    var valid = 0u;
    var bad = 0u;
    for (var n = lid; n < p.pixels; n += 256u) {
        acc += loss_in[n];
        let y = target_[n];
        if y != p.ignore {
            if y < p.classes {
                valid += 1u;
            } else {
                bad += 1u;
            }
        }
    }
    red_loss[lid] = acc;
    red_valid[lid] = valid;
    red_bad[lid] = bad;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            red_loss[lid] += red_loss[lid + s];
            red_valid[lid] += red_valid[lid + s];
            red_bad[lid] += red_bad[lid + s];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        let v = red_valid[0];
        loss_out[0] = select(0.0, red_loss[0] / f32(v), v > 0u);
        counts[0] = v;
        counts[1] = red_bad[0];
    }
}

// Per pixel: dx_n, and w_nc / max(||x_n||, EPS) into wbuf[c * N + n].
@compute @workgroup_size(256)
fn pixel_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(gid, nwg);
    if n >= p.pixels {
        return;
    }
    let y = target_[n];
    let base = pixel_base(n);
    if !labelled(y) {
        for (var d = 0u; d < p.dim; d++) {
            gx[base + d * p.hw] = 0.0;
        }
        for (var c = 0u; c < p.classes; c++) {
            wbuf[c * p.pixels + n] = 0.0;
        }
        return;
    }
    let nrm = feature_norm(base);
    let inv = 1.0 / max(nrm, EPS);
    let gs = gout[0] * p.inv_count * p.scale;
    let l = lse[n];
    var t = 0.0;
    for (var c = 0u; c < p.classes; c++) {
        let cosv = feature_dot(base, c) * inv;
        let w = gs * (exp(p.scale * cosv - l) - select(0.0, 1.0, c == y));
        wbuf[c * p.pixels + n] = w * inv;
        t += w * cosv;
    }
    let proj = select(0.0, t, nrm > EPS) * inv * inv;
    for (var d = 0u; d < p.dim; d++) {
        var s = 0.0;
        for (var c = 0u; c < p.classes; c++) {
            s += wbuf[c * p.pixels + n] * phat[c * p.dim + d];
        }
        gx[base + d * p.hw] = s - proj * feats[base + d * p.hw];
    }
}

// partial[(k * C + c) * D + d] = sum over chunk k's pixels of wbuf[c, n] * x_n[d].
// Chunks never straddle two images, so the inner loop reads contiguous words.
@compute @workgroup_size(256)
fn proto_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.partials * p.classes * p.dim {
        return;
    }
    let d = i % p.dim;
    let r = i / p.dim;
    let c = r % p.classes;
    let k = r / p.classes;
    let b = k / p.chunks_per_image;
    let s0 = (k - b * p.chunks_per_image) * p.chunk;
    let s1 = min(s0 + p.chunk, p.hw);
    let fb = b * p.dim * p.hw + d * p.hw;
    let wb = c * p.pixels + b * p.hw;
    var acc = 0.0;
    for (var s = s0; s < s1; s++) {
        acc += wread[wb + s] * feats[fb + s];
    }
    partial[i] = acc;
}

// A_c[d]: the chunk partials summed, into gp.
@compute @workgroup_size(256)
fn proto_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    let cd = p.classes * p.dim;
    if i >= cd {
        return;
    }
    var acc = 0.0;
    for (var k = 0u; k < p.partials; k++) {
        acc += partial_in[k * cd + i];
    }
    gp[i] = acc;
}

// dp_c from A_c in place: remove the component along phat_c, divide by the norm.
@compute @workgroup_size(256)
fn proto_project(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = thread_index(gid, nwg);
    if c >= p.classes {
        return;
    }
    var dot = 0.0;
    for (var d = 0u; d < p.dim; d++) {
        dot += gp[c * p.dim + d] * phat[c * p.dim + d];
    }
    let nrm = pnorm[c];
    let proj = select(0.0, dot, nrm > EPS);
    let inv = 1.0 / max(nrm, EPS);
    for (var d = 0u; d < p.dim; d++) {
        let i = c * p.dim + d;
        gp[i] = (gp[i] - proj * phat[i]) * inv;
    }
}
