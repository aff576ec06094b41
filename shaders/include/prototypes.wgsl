// The uniform block and indexing shared by class_prototypes.wgsl,
// prototype_bank.wgsl and label_transfer.wgsl (one Rust struct fills it:
// `Launch` in src/ops/class_prototypes.rs). Pixel n = b * HW + s reads
// feats[b * D * HW + d * HW + s].
struct Params {
    dim: u32,
    hw: u32,
    classes: u32,
    pixels: u32,
    ignore: u32,
    chunk: u32,
    chunks_per_image: u32,
    partials: u32,
    momentum: f32,
    scale: f32,
}

const EPS: f32 = 1e-12;

@group(0) @binding(24) var<uniform> p: Params;

fn thread_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn pixel_base(n: u32) -> u32 {
    let b = n / p.hw;
    return b * p.dim * p.hw + (n - b * p.hw);
}
