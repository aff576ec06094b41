// Masked per-class means of a [B, D, HW] feature map, and their backward.
// #include prototypes

@group(0) @binding(0) var<storage, read> feats: array<f32>;
@group(0) @binding(1) var<storage, read> target_: array<u32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<storage, read> partial_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> protos_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> counts_out: array<u32>;
@group(0) @binding(6) var<storage, read> counts: array<u32>;
@group(0) @binding(7) var<storage, read> gout: array<f32>;
@group(0) @binding(8) var<storage, read_write> gx: array<f32>;

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
