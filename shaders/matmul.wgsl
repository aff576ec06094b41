// Batched matmul C[b] = A[b] @ B[b] with arbitrary element strides for A and B
// (transposed operands and broadcast batches need no copy); C is contiguous
// [batch, m, n]. Each invocation computes a 4x4 block of C from registers, with no
// workgroup memory or barriers (lavapipe pays heavily for those).
struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_batch_stride: u32,
    a_row_stride: u32,
    a_col_stride: u32,
    b_batch_stride: u32,
    b_row_stride: u32,
    b_col_stride: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col0 = gid.x * 4u;
    let row0 = gid.y * 4u;
    let bt = gid.z;
    if row0 >= p.m || col0 >= p.n || bt >= p.batch {
        return;
    }
    // Rows and columns past the edge are clamped for loading and skipped on store.
    var a_off: vec4<u32>;
    var b_off: vec4<u32>;
    for (var i = 0u; i < 4u; i++) {
        a_off[i] = bt * p.a_batch_stride + min(row0 + i, p.m - 1u) * p.a_row_stride;
        b_off[i] = bt * p.b_batch_stride + min(col0 + i, p.n - 1u) * p.b_col_stride;
    }
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var kk = 0u; kk < p.k; kk++) {
        let ak = kk * p.a_col_stride;
        let bk = kk * p.b_row_stride;
        let bv = vec4<f32>(b[b_off.x + bk], b[b_off.y + bk], b[b_off.z + bk], b[b_off.w + bk]);
        acc0 += a[a_off.x + ak] * bv;
        acc1 += a[a_off.y + ak] * bv;
        acc2 += a[a_off.z + ak] * bv;
        acc3 += a[a_off.w + ak] * bv;
    }
    let rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + i;
        if row >= p.m {
            break;
        }
        let base = (bt * p.m + row) * p.n;
        for (var j = 0u; j < 4u; j++) {
            if col0 + j < p.n {
                c[base + col0 + j] = rows[i][j];
            }
        }
    }
}
