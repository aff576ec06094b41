// Batched matmul C[b] = A[b] @ B[b] with arbitrary element strides for A and B
// (transposed operands and broadcast batches need no copy); C is contiguous
// [batch, m, n]. Each invocation computes an 8x8 block of C in registers with no
// workgroup memory or barriers: lavapipe pays heavily for barriers, and the 8x8
// block reuses each loaded value eight times (4x4 blocks ran at half the speed).
//
// Two folds let one launch cover what would otherwise be a batch of small products
// (a 1x1 convolution per image of [C, H*W] maps): the n columns may be segments of
// n_segment columns, segment s at B's batch offset (batch index + s) and stored as
// C [batch + s, m, n_segment] (one segment of n columns when unfolded); and each C
// may be the sum over k_segments consecutive batch entries of A and B (invocations
// of batch index bt sum entries bt * k_segments + t), so that a weight gradient sums
// its images inside the K loop instead of through a [N, m, n] intermediate.
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
    n_segment: u32,
    k_segments: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const BLOCK: u32 = 8u;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col0 = gid.x * BLOCK;
    let row0 = gid.y * BLOCK;
    let bt = gid.z;
    if row0 >= p.m || col0 >= p.n || bt >= p.batch {
        return;
    }
    // Rows and columns past the edge are clamped for loading and skipped on store.
    let first = bt * p.k_segments;
    var a_off: array<u32, 8>;
    var b_off: array<u32, 8>;
    var c_col: array<u32, 8>;
    for (var i = 0u; i < BLOCK; i++) {
        let col = min(col0 + i, p.n - 1u);
        let seg = col / p.n_segment;
        let q = col - seg * p.n_segment;
        a_off[i] = first * p.a_batch_stride + min(row0 + i, p.m - 1u) * p.a_row_stride;
        b_off[i] = (first + seg) * p.b_batch_stride + q * p.b_col_stride;
        c_col[i] = seg * p.m * p.n_segment + q;
    }
    // acc[2i] holds columns 0..3 of row i, acc[2i + 1] columns 4..7.
    var acc: array<vec4<f32>, 16>;
    for (var t = 0u; t < p.k_segments; t++) {
        let a_seg = t * p.a_batch_stride;
        let b_seg = t * p.b_batch_stride;
        for (var kk = 0u; kk < p.k; kk++) {
            let ak = a_seg + kk * p.a_col_stride;
            let bk = b_seg + kk * p.b_row_stride;
            let lo = vec4<f32>(b[b_off[0] + bk], b[b_off[1] + bk], b[b_off[2] + bk], b[b_off[3] + bk]);
            let hi = vec4<f32>(b[b_off[4] + bk], b[b_off[5] + bk], b[b_off[6] + bk], b[b_off[7] + bk]);
            // Unrolled by hand: as a loop, the accumulators spill (12 instead of 15 GFLOP/s on lavapipe).
            let a0 = a[a_off[0] + ak];
            acc[0] += a0 * lo;
            acc[1] += a0 * hi;
            let a1 = a[a_off[1] + ak];
            acc[2] += a1 * lo;
            acc[3] += a1 * hi;
            let a2 = a[a_off[2] + ak];
            acc[4] += a2 * lo;
            acc[5] += a2 * hi;
            let a3 = a[a_off[3] + ak];
            acc[6] += a3 * lo;
            acc[7] += a3 * hi;
            let a4 = a[a_off[4] + ak];
            acc[8] += a4 * lo;
            acc[9] += a4 * hi;
            let a5 = a[a_off[5] + ak];
            acc[10] += a5 * lo;
            acc[11] += a5 * hi;
            let a6 = a[a_off[6] + ak];
            acc[12] += a6 * lo;
            acc[13] += a6 * hi;
            let a7 = a[a_off[7] + ak];
            acc[14] += a7 * lo;
            acc[15] += a7 * hi;
        }
    }
    for (var i = 0u; i < BLOCK; i++) {
        let row = row0 + i;
        if row >= p.m {
            break;
        }
        let base = (bt * p.m + row) * p.n_segment;
        for (var j = 0u; j < BLOCK; j++) {
            if col0 + j < p.n {
                c[base + c_col[j]] = acc[2u * i + j / 4u][j % 4u];
            }
        }
    }
}
