// K-means building blocks: nearest-centroid assignment, one-hot encoding of the
// assignment (the per-cluster sums are then one matmul), and the centroid update
// that keeps an empty cluster's previous centroid.
struct Params {
    n: u32,
    d: u32,
    k: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> points: array<f32>;
@group(0) @binding(1) var<storage, read> centroids: array<f32>;
@group(0) @binding(2) var<storage, read_write> labels: array<u32>;
@group(0) @binding(3) var<storage, read_write> dist: array<f32>;
@group(0) @binding(4) var<storage, read> in_labels: array<u32>;
@group(0) @binding(5) var<storage, read_write> onehot_out: array<f32>;
@group(0) @binding(6) var<storage, read> sums: array<f32>;
@group(0) @binding(7) var<storage, read> counts: array<f32>;
@group(0) @binding(8) var<storage, read_write> new_centroids: array<f32>;
@group(0) @binding(9) var<uniform> p: Params;

fn linear_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Squared distance to the nearest centroid and its index; ties go to the lowest index.
@compute @workgroup_size(256)
fn assign(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear_index(gid, nwg);
    if i >= p.n {
        return;
    }
    var best = 0u;
    var best_d = 3.0e38;
    for (var c = 0u; c < p.k; c++) {
        var acc = 0.0;
        for (var j = 0u; j < p.d; j++) {
            let diff = points[i * p.d + j] - centroids[c * p.d + j];
            acc += diff * diff;
        }
        if acc < best_d {
            best_d = acc;
            best = c;
        }
    }
    labels[i] = best;
    dist[i] = best_d;
}

// [n, k] one-hot rows of the assignment.
@compute @workgroup_size(256)
fn onehot(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg);
    if t >= p.n * p.k {
        return;
    }
    onehot_out[t] = select(0.0, 1.0, in_labels[t / p.k] == t % p.k);
}

// centroid = sum / count; an empty cluster keeps its previous centroid.
@compute @workgroup_size(256)
fn update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear_index(gid, nwg);
    if t >= p.k * p.d {
        return;
    }
    let c = counts[t / p.d];
    new_centroids[t] = select(centroids[t], sums[t] / c, c > 0.0);
}
