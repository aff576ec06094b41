// gather_pixels: out[b * P + q, d] = input[b, d, idx[b, q]] for input [B, D, HW] and
// flat positions idx [B, P]; positions outside 0..HW read as 0. The backward gathers
// too: each input pixel scans its image's P indices and sums the rows that name it,
// so repeated indices add up without atomics.
struct Params {
    batch: u32,
    dim: u32,
    hw: u32,
    points: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> gout: array<f32>;
@group(0) @binding(4) var<storage, read_write> gin: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// One invocation per output element, so writes are contiguous.
@compute @workgroup_size(256)
fn gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.batch * p.points * p.dim {
        return;
    }
    let row = i / p.dim;
    let d = i - row * p.dim;
    let b = row / p.points;
    let s = idx[row];
    var v = 0.0;
    if s < p.hw {
        v = input[(b * p.dim + d) * p.hw + s];
    }
    out[i] = v;
}

// One invocation per input pixel (b, s).
@compute @workgroup_size(256)
fn gather_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = thread_index(gid, nwg);
    if n >= p.batch * p.hw {
        return;
    }
    let b = n / p.hw;
    let s = n - b * p.hw;
    let base = b * p.dim * p.hw + s;
    for (var d = 0u; d < p.dim; d++) {
        gin[base + d * p.hw] = 0.0;
    }
    for (var q = 0u; q < p.points; q++) {
        let row = b * p.points + q;
        if idx[row] == s {
            for (var d = 0u; d < p.dim; d++) {
                gin[base + d * p.hw] += gout[row * p.dim + d];
            }
        }
    }
}
