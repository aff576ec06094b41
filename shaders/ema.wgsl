// Momentum (EMA) update of a key network's tensor from its query twin, in place:
//   key = m * key + (1 - m) * query
// (MoCo / MaskContrast's momentum encoder). One invocation per element.
struct Params {
    n: u32,
    momentum: f32,
}

@group(0) @binding(0) var<storage, read_write> key: array<f32>;
@group(0) @binding(1) var<storage, read> query: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn ema(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    key[i] = p.momentum * key[i] + (1.0 - p.momentum) * query[i];
}
