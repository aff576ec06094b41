// Masked average of per-pixel embeddings: input [B,D,HW], mask [B,HW] (0/1 weights)
//   out[b,d] = sum_p mask[b,p] * x[b,d,p] / S_b,   S_b = sum_p mask[b,p]
// and its backward dx[b,d,p] = g[b,d] * mask[b,p] / S_b. One invocation per (b, d)
// row walks that row's pixels contiguously. An empty mask (S_b = 0) yields a zero row
// and a zero gradient rather than NaN; callers detect it from the sums.
struct Params {
    d: u32,
    hw: u32,
    rows: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mask: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> sums: array<f32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> bsums: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

fn safe_inverse(s: f32) -> f32 {
    return select(0.0, 1.0 / s, s != 0.0);
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 256u;
    if r >= p.rows {
        return;
    }
    let b = r / p.d;
    let xbase = r * p.hw;
    let mbase = b * p.hw;
    var acc = 0.0;
    var s = 0.0;
    for (var i = 0u; i < p.hw; i++) {
        let m = mask[mbase + i];
        acc += m * x[xbase + i];
        s += m;
    }
    out[r] = acc * safe_inverse(s);
    // Every row of image b computes the same S_b; its first row stores it.
    if r == b * p.d {
        sums[b] = s;
    }
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 256u;
    if r >= p.rows {
        return;
    }
    let b = r / p.d;
    let gs = g[r] * safe_inverse(bsums[b]);
    let xbase = r * p.hw;
    let mbase = b * p.hw;
    for (var i = 0u; i < p.hw; i++) {
        dx[xbase + i] = gs * mask[mbase + i];
    }
}
