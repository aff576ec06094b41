// Finiteness flags: slot `slot` of `flags` keeps the largest `mark` (u32::MAX minus
// the step, so the earliest step) at which any of the first `n` values was NaN or
// infinite, so a step's loss terms and gradients are checked with nothing read back.
struct Params {
    n: u32,
    slot: u32,
    mark: u32,
}

@group(0) @binding(0) var<storage, read> values: array<f32>;
@group(0) @binding(1) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

// #include is_finite

@compute @workgroup_size(256)
fn flag(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i < p.n && !is_finite(values[i]) {
        atomicMax(&flags[p.slot], p.mark);
    }
}
