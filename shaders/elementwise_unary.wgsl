// Elementwise unary ops and their backward, selected by the OP specialisation
// constant so each op compiles to its own branch-free pipeline.
// 0 relu, 1 leaky_relu, 2 sigmoid, 3 tanh, 4 exp, 5 log, 6 sqrt, 7 pow,
// 8 add_scalar, 9 mul_scalar, 10 neg, 11 relu6, 12 gelu, 13 gelu (tanh approximation).
// `alpha` is the op's scalar (negative slope, exponent, or the scalar operand).
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

// N. Juffa's erff (under 1 ulp given an accurate exp), so gelu follows PyTorch's
// std::erf closely, tails included, unlike 1e-7 absolute-error approximations.
fn erf(a: f32) -> f32 {
    let t = abs(a);
    let s = a * a;
    if t > 0.927734375 {
        var r = fma(fma(-1.72853470e-5, t, 3.83197126e-4), s, fma(-3.88396438e-3, t, 2.42546219e-2));
        r = fma(r, t, -1.06777877e-1);
        r = fma(r, t, -6.34846687e-1);
        r = fma(r, t, -1.28717512e-1);
        r = fma(r, t, -t);
        let e = 1.0 - exp(r);
        return select(-e, e, a >= 0.0);
    }
    var r = -5.96761703e-4;
    r = fma(r, s, 4.99119423e-3);
    r = fma(r, s, -2.67681349e-2);
    r = fma(r, s, 1.12819925e-1);
    r = fma(r, s, -3.76125336e-1);
    r = fma(r, s, 1.28379166e-1);
    return fma(r, a, a);
}

const SQRT1_2: f32 = 0.70710678118654752;
// sqrt(2 / pi) and 1 / sqrt(2 pi)
const GELU_BETA: f32 = 0.79788456080286536;
const INV_SQRT_2PI: f32 = 0.39894228040143268;
const GELU_KAPPA: f32 = 0.044715;

// tanh of the tanh-gelu argument; clamped because tanh may be lowered to
// sinh/cosh, which overflow near 89 (tanh(10) is already 1 in f32).
fn gelu_tanh_inner(v: f32) -> f32 {
    return tanh(clamp(GELU_BETA * (v + GELU_KAPPA * v * v * v), -10.0, 10.0));
}

// #include is_nan

// NaN passes through relu and relu6 as in torch (max and clamp may drop it).
fn forward_op(v: f32) -> f32 {
    switch OP {
        case 0u: { return select(max(v, 0.0), v, is_nan(v)); }
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
        case 11u: { return select(clamp(v, 0.0, 6.0), v, is_nan(v)); }
        case 12u: { return 0.5 * v * (1.0 + erf(v * SQRT1_2)); }
        case 13u: { return 0.5 * v * (1.0 + gelu_tanh_inner(v)); }
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
        case 12u: {
            let cdf = 0.5 * (1.0 + erf(v * SQRT1_2));
            return g * (cdf + v * exp(-0.5 * v * v) * INV_SQRT_2PI);
        }
        case 13u: {
            let t = gelu_tanh_inner(v);
            let inner_grad = GELU_BETA * (1.0 + 3.0 * GELU_KAPPA * v * v);
            return g * (0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * inner_grad);
        }
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
