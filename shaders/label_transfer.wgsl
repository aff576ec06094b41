// Label transfer by nearest prototype: each pixel's class and confidence, then
// the pseudo labels kept where they reach their class's threshold.
// #include prototypes

@group(0) @binding(0) var<storage, read> feats: array<f32>;
@group(0) @binding(17) var<storage, read> phat: array<f32>;
@group(0) @binding(18) var<storage, read_write> labels_out: array<u32>;
@group(0) @binding(19) var<storage, read_write> conf_out: array<f32>;
@group(0) @binding(20) var<storage, read> labels_in: array<u32>;
@group(0) @binding(21) var<storage, read> conf_in: array<f32>;
@group(0) @binding(22) var<storage, read> thresholds: array<f32>;
@group(0) @binding(23) var<storage, read_write> pseudo: array<u32>;

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
