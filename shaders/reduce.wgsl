// Sum (times `scale`, so mean too) over any set of axes. Each output element owns
// the input offset of its kept indices (out_shape/out_strides) and walks the reduced
// index space (red_shape/red_strides). Two schedules of the same arithmetic:
// `per_thread` (one invocation per output: many outputs, short reductions) and
// `per_group` (one workgroup per output with a tree reduction: few, long ones).
struct Params {
    n_out: u32,
    out_rank: u32,
    red_rank: u32,
    red_count: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    out_shape: array<vec4<u32>, 2>,
    out_strides: array<vec4<u32>, 2>,
    red_shape: array<vec4<u32>, 2>,
    red_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> partial: array<f32, 256>;

fn base_offset(o: u32) -> u32 {
    var rem = o;
    var off = 0u;
    for (var d = i32(p.out_rank) - 1; d >= 0; d--) {
        let du = u32(d);
        let size = p.out_shape[du / 4u][du % 4u];
        off += (rem % size) * p.out_strides[du / 4u][du % 4u];
        rem = rem / size;
    }
    return off;
}

fn reduced_offset(r: u32) -> u32 {
    var rem = r;
    var off = 0u;
    for (var d = i32(p.red_rank) - 1; d >= 0; d--) {
        let du = u32(d);
        let size = p.red_shape[du / 4u][du % 4u];
        off += (rem % size) * p.red_strides[du / 4u][du % 4u];
        rem = rem / size;
    }
    return off;
}

@compute @workgroup_size(256)
fn per_thread(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 256u;
    if o >= p.n_out {
        return;
    }
    let base = base_offset(o);
    var acc = 0.0;
    for (var r = 0u; r < p.red_count; r++) {
        acc += src[base + reduced_offset(r)];
    }
    out[o] = acc * p.scale;
}

@compute @workgroup_size(256)
fn per_group(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = wid.x + wid.y * nwg.x;
    let valid = o < p.n_out;
    var acc = 0.0;
    if valid {
        let base = base_offset(o);
        for (var r = lid; r < p.red_count; r += 256u) {
            acc += src[base + reduced_offset(r)];
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if lid < s {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if valid && lid == 0u {
        out[o] = partial[0] * p.scale;
    }
}
