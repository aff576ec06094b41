// Elementwise unary ops and their backward, selected by the OP specialisation
// constant so each op compiles to its own branch-free pipeline.
// 0 relu, 1 leaky_relu, 2 sigmoid, 3 tanh, 4 exp, 5 log, 6 sqrt, 7 pow,
// 8 add_scalar, 9 mul_scalar, 10 neg, 11 relu6. `alpha` is the op's scalar
// (negative slope, exponent, or the scalar operand).
override OP: u32 = 0u;

struct Params {
    n: u32,
    alpha: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> bx: array<f32>;
@group(0) @binding(3) var<storage, read> by: array<f32>;
@group(0) @binding(4) var<storage, read> bg: array<f32>;
@group(0) @binding(5) var<storage, read_write> bdx: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

// x^a that, like torch.pow, is defined for negative x when a is an integer.
fn signed_pow(v: f32, a: f32) -> f32 {
    let m = pow(abs(v), a);
    if v >= 0.0 {
        return m;
    }
    if a != floor(a) {
        return bitcast<f32>(0x7fc00000u);
    }
    if abs(a % 2.0) == 1.0 {
        return -m;
    }
    return m;
}

fn forward_op(v: f32) -> f32 {
    switch OP {
        case 0u: { return max(v, 0.0); }
        case 1u: { return select(p.alpha * v, v, v > 0.0); }
        case 2u: { return 1.0 / (1.0 + exp(-v)); }
        case 3u: { return tanh(v); }
        case 4u: { return exp(v); }
        case 5u: { return log(v); }
        case 6u: { return sqrt(v); }
        case 7u: { return signed_pow(v, p.alpha); }
        case 8u: { return v + p.alpha; }
        case 9u: { return v * p.alpha; }
        case 10u: { return -v; }
        case 11u: { return clamp(v, 0.0, 6.0); }
        default: { return v; }
    }
}

// d(out)/d(in) times the incoming gradient g, from the input v and output o.
fn backward_op(v: f32, o: f32, g: f32) -> f32 {
    switch OP {
        case 0u: { return select(0.0, g, v > 0.0); }
        case 1u: { return select(p.alpha * g, g, v > 0.0); }
        case 2u: { return g * o * (1.0 - o); }
        case 3u: { return g * (1.0 - o * o); }
        case 4u: { return g * o; }
        case 5u: { return g / v; }
        case 6u: { return g * 0.5 / o; }
        case 7u: { return g * p.alpha * signed_pow(v, p.alpha - 1.0); }
        case 8u: { return g; }
        case 9u: { return g * p.alpha; }
        case 10u: { return -g; }
        case 11u: { return select(0.0, g, v > 0.0 && v < 6.0); }
        default: { return g; }
    }
}

@compute @workgroup_size(256)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    y[i] = forward_op(x[i]);
}

@compute @workgroup_size(256)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if i >= p.n {
        return;
    }
    bdx[i] = backward_op(bx[i], by[i], bg[i]);
}
