// Strided copy over an iteration shape of up to 8 dims:
//   out[out_offset + sum(i_d * out_strides_d)] = src[in_offset + sum(i_d * in_strides_d)]
// One kernel serves permute, expand (stride 0), slice (offset + step strides),
// concat (each input into its region) and slice backward. Elements are copied as raw
// 32-bit words, so it moves f32 and u32 tensors alike.
struct Params {
    n: u32,
    in_offset: u32,
    out_offset: u32,
    _pad: u32,
    shape: array<vec4<u32>, 2>,
    in_strides: array<vec4<u32>, 2>,
    out_strides: array<vec4<u32>, 2>,
}

// The folded rank (1..=8), a pipeline constant so that the index loop unrolls with
// constant indices into the uniform arrays: on lavapipe the loop over a uniform rank
// cost most of the copy.
override RANK: u32 = 8u;

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    var rem = i;
    var si = p.in_offset;
    var oi = p.out_offset;
    for (var d = i32(RANK) - 1; d >= 0; d--) {
        let du = u32(d);
        let size = p.shape[du / 4u][du % 4u];
        let idx = rem % size;
        rem = rem / size;
        si += idx * p.in_strides[du / 4u][du % 4u];
        oi += idx * p.out_strides[du / 4u][du % 4u];
    }
    out[oi] = src[si];
}
