// Supervised cross-image pixel contrast (Wang et al., ICCV 2021) with negatives
// summed separately. Anchors z [N, D] contrast with the other anchors and an
// optional detached memory [M, D]; s_aj = z_a . z_j / T. With P(a) the candidates
// sharing a's label (a itself excluded), N(a) the others and
// nl_a = logsumexp_{n in N(a)} s_an:
//   L_a = k / |P(a)| * sum_{p in P(a)} softplus(nl_a - s_ap),   k = T / base_T
// which is -k/|P| sum_p [s_ap - log(exp(s_ap) + sum_n exp(s_an))]. Similarities are
// recomputed on the fly, so nothing of size N x (N + M) is stored.
struct Params {
    anchors: u32,
    memory: u32,
    dim: u32,
    inv_temp: f32,
    // k = T / base_T
    k: f32,
    // backward: ceil(dim / CHUNK)
    chunks: u32,
}

// nl_a when a has no negatives: exp(nl - s) underflows to 0, so such an anchor's
// terms vanish as the empty sum says.
const NO_NEGATIVES: f32 = -3.0e38;
// Feature dims one backward invocation accumulates. Each chunk recomputes the full
// similarities, so the chunk covers the usual embedding dims (32 for MaskContrast,
// 256 for pixel contrast) in one: on lavapipe 256 ran the backward 4x faster than
// 32 at N = 512, D = 256.
const CHUNK: u32 = 256u;

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read> mem: array<f32>;
@group(0) @binding(3) var<storage, read> mem_labels: array<u32>;
// per anchor: (nl_a, 1/|P(a)| or 0, sum_p sigmoid(nl_a - s_ap), unused)
@group(0) @binding(4) var<storage, read_write> stats: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> has_pos: array<f32>;
@group(0) @binding(7) var<storage, read> stats_in: array<vec4<f32>>;
// the number of anchors with a positive (the mean's denominator)
@group(0) @binding(8) var<storage, read> counted: array<f32>;
@group(0) @binding(9) var<storage, read> g: array<f32>;
@group(0) @binding(10) var<storage, read_write> dz: array<f32>;
@group(0) @binding(11) var<uniform> p: Params;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn sim_anchor(a: u32, j: u32) -> f32 {
    var acc = 0.0;
    let ra = a * p.dim;
    let rj = j * p.dim;
    for (var d = 0u; d < p.dim; d++) {
        acc += z[ra + d] * z[rj + d];
    }
    return acc * p.inv_temp;
}

fn sim_memory(a: u32, m: u32) -> f32 {
    var acc = 0.0;
    let ra = a * p.dim;
    let rm = m * p.dim;
    for (var d = 0u; d < p.dim; d++) {
        acc += z[ra + d] * mem[rm + d];
    }
    return acc * p.inv_temp;
}

fn softplus(u: f32) -> f32 {
    return max(u, 0.0) + log(1.0 + exp(-abs(u)));
}

fn sigmoid(u: f32) -> f32 {
    let e = exp(-abs(u));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), u >= 0.0);
}

// Online log-sum-exp state: (running max, sum of exp(v - max)).
fn lse_push(st: vec2<f32>, v: f32) -> vec2<f32> {
    if v > st.x {
        return vec2<f32>(v, st.y * exp(st.x - v) + 1.0);
    }
    return vec2<f32>(st.x, st.y + exp(v - st.x));
}

// One invocation per anchor: pass 1 takes the negatives' log-sum-exp and counts
// positives, pass 2 sums the positives' terms.
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let a = gid.x + gid.y * nwg.x * 64u;
    if a >= p.anchors {
        return;
    }
    let la = labels[a];
    var st = vec2<f32>(NO_NEGATIVES, 0.0);
    var npos = 0u;
    for (var j = 0u; j < p.anchors; j++) {
        if j == a {
            continue;
        }
        if labels[j] == la {
            npos++;
        } else {
            st = lse_push(st, sim_anchor(a, j));
        }
    }
    for (var m = 0u; m < p.memory; m++) {
        if mem_labels[m] == la {
            npos++;
        } else {
            st = lse_push(st, sim_memory(a, m));
        }
    }
    var nl = NO_NEGATIVES;
    if st.y > 0.0 {
        nl = st.x + log(st.y);
    }
    var sp = 0.0;
    var sig = 0.0;
    for (var j = 0u; j < p.anchors; j++) {
        if j != a && labels[j] == la {
            let u = nl - sim_anchor(a, j);
            sp += softplus(u);
            sig += sigmoid(u);
        }
    }
    for (var m = 0u; m < p.memory; m++) {
        if mem_labels[m] == la {
            let u = nl - sim_memory(a, m);
            sp += softplus(u);
            sig += sigmoid(u);
        }
    }
    var inv_p = 0.0;
    if npos > 0u {
        inv_p = 1.0 / f32(npos);
    }
    stats[a] = vec4<f32>(nl, inv_p, sig, 0.0);
    row_loss[a] = p.k * inv_p * sp;
    has_pos[a] = select(0.0, 1.0, npos > 0u);
}

// dL_a/ds_aj from a's stats: -k/|P| sigmoid(nl - s) for a positive j,
// k/|P| * sum_p sigmoid(nl - s_ap) * exp(s - nl) for a negative one.
fn coef(st: vec4<f32>, same: bool, s: f32) -> f32 {
    if same {
        return -p.k * st.y * sigmoid(st.x - s);
    }
    return p.k * st.y * st.z * exp(s - st.x);
}

// One invocation per (anchor i, CHUNK dims): dL/dz_i = (1/T) [sum_j (c_ij + c_ji) z_j
// + sum_m c_im mem_m], each anchor's similarity entering its own row and the other's.
@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let tid = gid.x + gid.y * nwg.x * 64u;
    if tid >= p.anchors * p.chunks {
        return;
    }
    let i = tid / p.chunks;
    let d0 = (tid % p.chunks) * CHUNK;
    let width = min(CHUNK, p.dim - d0);
    let li = labels[i];
    let si = stats_in[i];
    var acc: array<f32, CHUNK>;
    for (var j = 0u; j < p.anchors; j++) {
        if j == i {
            continue;
        }
        let s = sim_anchor(i, j);
        let same = labels[j] == li;
        let w = coef(si, same, s) + coef(stats_in[j], same, s);
        let rj = j * p.dim + d0;
        for (var d = 0u; d < width; d++) {
            acc[d] += w * z[rj + d];
        }
    }
    for (var m = 0u; m < p.memory; m++) {
        let s = sim_memory(i, m);
        let w = coef(si, mem_labels[m] == li, s);
        let rm = m * p.dim + d0;
        for (var d = 0u; d < width; d++) {
            acc[d] += w * mem[rm + d];
        }
    }
    let scale = g[0] / counted[0] * p.inv_temp;
    let ri = i * p.dim + d0;
    for (var d = 0u; d < width; d++) {
        dz[ri + d] = acc[d] * scale;
    }
}
