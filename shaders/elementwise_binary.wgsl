// Elementwise binary ops with NumPy broadcasting. The host folds shapes into at most
// 8 dims; a broadcast input has stride 0 along the broadcast dims. rank 0 means both
// inputs are contiguous with the output's shape (no index arithmetic).
// OP: 0 add, 1 sub, 2 mul, 3 div.
override OP: u32 = 0u;

struct Params {
    n: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    shape: array<vec4<u32>, 2>,
    a_strides: array<vec4<u32>, 2>,
    b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn apply(u: f32, v: f32) -> f32 {
    switch OP {
        case 0u: { return u + v; }
        case 1u: { return u - v; }
        case 2u: { return u * v; }
        case 3u: { return u / v; }
        default: { return u; }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    if p.rank == 0u {
        out[i] = apply(a[i], b[i]);
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let du = u32(d);
        let size = p.shape[du / 4u][du % 4u];
        let idx = rem % size;
        rem = rem / size;
        ia += idx * p.a_strides[du / 4u][du % 4u];
        ib += idx * p.b_strides[du / 4u][du % 4u];
    }
    out[i] = apply(a[ia], b[ib]);
}
