// Class prototypes and what is built on them: masked per-class means of a
// [B, D, HW] feature map (with backward), the EMA prototype bank, the class-wise
// domain-bias calibration, and label transfer by nearest prototype. Pixel n = b * HW + s
// reads feats[b * D * HW + d * HW + s].
struct Params {
    dim: u32,
    hw: u32,
    classes: u32,
    pixels: u32,
    ignore: u32,
    chunk: u32,
    chunks_per_image: u32,
    partials: u32,
    momentum: f32,
    scale: f32,
}

const EPS: f32 = 1e-12;

@group(0) @binding(0) var<storage, read> feats: array<f32>;
@group(0) @binding(1) var<storage, read> target_: array<u32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<storage, read> partial_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> protos_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> counts_out: array<u32>;
@group(0) @binding(6) var<storage, read> counts: array<u32>;
@group(0) @binding(7) var<storage, read> gout: array<f32>;
@group(0) @binding(8) var<storage, read_write> gx: array<f32>;
@group(0) @binding(9) var<storage, read> batch: array<f32>;
@group(0) @binding(10) var<storage, read_write> bank: array<f32>;
@group(0) @binding(11) var<storage, read_write> flags: array<u32>;
@group(0) @binding(12) var<storage, read> flags_in: array<u32>;
@group(0) @binding(13) var<storage, read> source: array<f32>;
@group(0) @binding(14) var<storage, read_write> bias: array<f32>;
@group(0) @binding(15) var<storage, read> bias_in: array<f32>;
@group(0) @binding(16) var<storage, read_write> calib: array<f32>;
@group(0) @binding(17) var<storage, read> phat: array<f32>;
@group(0) @binding(18) var<storage, read_write> labels_out: array<u32>;
@group(0) @binding(19) var<storage, read_write> conf_out: array<f32>;
@group(0) @binding(20) var<storage, read> labels_in: array<u32>;
@group(0) @binding(21) var<storage, read> conf_in: array<f32>;
@group(0) @binding(22) var<storage, read> thresholds: array<f32>;
@group(0) @binding(23) var<storage, read_write> pseudo: array<u32>;
@group(0) @binding(24) var<uniform> p: Params;

fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn pixel_base(n: u32) -> u32 {
    let b = n / p.hw;
    return b * p.dim * p.hw + (n - b * p.hw);
}

// Per (chunk k, class c, column j) with D + 1 columns: j < D sums feature j over the
// chunk's pixels of class c, j = D counts them. Chunks never straddle two images.
@compute @workgroup_size(256)
fn class_partial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    let cols = p.dim + 1u;
    if i >= p.partials * p.classes * cols {
        return;
    }
    let j = i % cols;
    let r = i / cols;
    let c = r % p.classes;
    let k = r / p.classes;
    let b = k / p.chunks_per_image;
    let s0 = (k - b * p.chunks_per_image) * p.chunk;
    let s1 = min(s0 + p.chunk, p.hw);
    let tb = b * p.hw;
    var acc = 0.0;
    if c != p.ignore {
        if j == p.dim {
            for (var s = s0; s < s1; s++) {
                acc += select(0.0, 1.0, target_[tb + s] == c);
            }
        } else {
            let fb = b * p.dim * p.hw + j * p.hw;
            for (var s = s0; s < s1; s++) {
                if target_[tb + s] == c {
                    acc += feats[fb + s];
                }
            }
        }
    }
    partial[i] = acc;
}

// Per (c, j): the chunk sums of class c combined into its mean (0 without pixels),
// j = D writing the count.
@compute @workgroup_size(256)
fn class_finish(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    let cols = p.dim + 1u;
    if i >= p.classes * cols {
        return;
    }
    let j = i % cols;
    let c = i / cols;
    let stride = p.classes * cols;
    var total = 0.0;
    var count = 0.0;
    for (var k = 0u; k < p.partials; k++) {
        total += partial_in[k * stride + i];
        count += partial_in[k * stride + c * cols + p.dim];
    }
    if j == p.dim {
        counts_out[c] = u32(count);
    } else {
        protos_out[c * p.dim + j] = select(0.0, total / count, count > 0.0);
    }
}

// Per pixel: dx = g[y] / count[y] for a labelled pixel, else 0.
@compute @workgroup_size(256)
fn class_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(gid, nwg);
    if n >= p.pixels {
        return;
    }
    let y = target_[n];
    let base = pixel_base(n);
    let labelled = y != p.ignore && y < p.classes;
    var inv = 0.0;
    var row = 0u;
    if labelled {
        inv = 1.0 / f32(counts[y]);
        row = y * p.dim;
    }
    for (var d = 0u; d < p.dim; d++) {
        gx[base + d * p.hw] = select(0.0, gout[row + d] * inv, labelled);
    }
}

// Bank EMA in place for classes present in the batch; a class's first sighting copies.
@compute @workgroup_size(256)
fn ema_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.classes * p.dim {
        return;
    }
    let c = i / p.dim;
    if counts[c] == 0u {
        return;
    }
    let m = p.momentum;
    bank[i] = select(m * bank[i] + (1.0 - m) * batch[i], batch[i], flags_in[c] == 0u);
}

// Marks the classes of the batch as seen (after ema_update, which reads the flags).
@compute @workgroup_size(256)
fn ema_flags(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = thread_index(gid, nwg);
    if c >= p.classes {
        return;
    }
    if counts[c] > 0u {
        flags[c] = 1u;
    }
}

// bias_c <- m * bias_c + (1 - m) * (target batch mean_c - source bank prototype_c), for
// classes in the target batch that the source bank has seen.
@compute @workgroup_size(256)
fn bias_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.classes * p.dim {
        return;
    }
    let c = i / p.dim;
    if counts[c] == 0u || flags_in[c] == 0u {
        return;
    }
    let m = p.momentum;
    bias[i] = m * bias[i] + (1.0 - m) * (batch[i] - source[i]);
}

@compute @workgroup_size(256)
fn calibrated(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.classes * p.dim {
        return;
    }
    calib[i] = source[i] + bias_in[i];
}

// Per pixel: the nearest prototype by cosine (the first on ties) and its probability
// under softmax(scale * cos), via an online log-sum-exp over the classes.
@compute @workgroup_size(256)
fn assign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(gid, nwg);
    if n >= p.pixels {
        return;
    }
    let base = pixel_base(n);
    var sq = 0.0;
    for (var d = 0u; d < p.dim; d++) {
        let v = feats[base + d * p.hw];
        sq += v * v;
    }
    let k = p.scale / max(sqrt(sq), EPS);
    var m = 0.0;
    var s = 0.0;
    var best = 0u;
    for (var c = 0u; c < p.classes; c++) {
        var dot = 0.0;
        for (var d = 0u; d < p.dim; d++) {
            dot += feats[base + d * p.hw] * phat[c * p.dim + d];
        }
        let z = k * dot;
        if c == 0u {
            m = z;
            s = 1.0;
        } else if z > m {
            s = s * exp(m - z) + 1.0;
            m = z;
            best = c;
        } else {
            s += exp(z - m);
        }
    }
    labels_out[n] = best;
    conf_out[n] = 1.0 / s;
}

// Keeps a pixel's label where its confidence reaches its class's threshold.
@compute @workgroup_size(256)
fn apply_thresholds(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(gid, nwg);
    if n >= p.pixels {
        return;
    }
    let l = labels_in[n];
    pseudo[n] = select(p.ignore, l, conf_in[n] >= thresholds[l]);
}
