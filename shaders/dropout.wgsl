// Seeded dropout: element i is kept when the top 24 bits of a counter-based hash of
// (key, i) reach the threshold ceil(p * 2^24), and kept elements are scaled by
// 1 / (1 - p). The mask needs no storage: backward runs this kernel on the output
// gradient with the same key. src/ops/dropout.rs mirrors the hash bit for bit
// (`dropout_keep`); change both together.
struct Params {
    n: u32,
    key: u32,
    threshold: u32,
    scale: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// PCG-RXS-M-XS output permutation (Jarzynski & Olano, "Hash Functions for GPU Rendering").
fn pcg(v: u32) -> u32 {
    let state = v * 747796405u + 2891336453u;
    let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    let keep = (pcg(pcg(i) ^ p.key) >> 8u) >= p.threshold;
    y[i] = select(0.0, x[i] * p.scale, keep);
}
