// The uniform block of conv2d.wgsl and conv2d_backward.wgsl: the geometry of one
// convolution, then the launch layout of the kernel (filled by `uniforms` in
// src/ops/conv2d/geometry.rs). cblocks: blocks of CB output channels per group in the
// forward, of CB input channels for input_grad, of CO output channels for
// weight_grad; wblocks: pixel blocks per row (input_grad: sw residues x qblocks);
// units: invocations along x.
struct Params {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    hout: u32,
    wout: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    // Input and output channels per group.
    cg: u32,
    coutg: u32,
    cblocks: u32,
    wblocks: u32,
    units: u32,
}
