// Fused optimiser updates, one invocation per parameter element, following
// torch.optim's formulas exactly. Parameters and state are updated in place.
struct Params {
    n: u32,
    step: u32,
    lr: f32,
    weight_decay: f32,
    // SGD: momentum, dampening, nesterov (0/1). Adam: beta1, beta2, eps.
    c0: f32,
    c1: f32,
    c2: f32,
    // Adam: 1 for AdamW's decoupled weight decay.
    decoupled: u32,
    // The finiteness flag of this gradient, and the step's mark (0: none): a NaN or
    // infinite gradient is flagged as the update reads it, so a step that does not
    // wait for its flags needs no dispatch to check its gradients.
    flag_slot: u32,
    mark: u32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> state0: array<f32>;
@group(0) @binding(3) var<storage, read_write> state1: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read_write> flags: array<atomic<u32>>;

// #include is_finite

// The gradient at `i`, flagged when it is not finite.
fn checked_grad(i: u32) -> f32 {
    let g = grad[i];
    if p.mark != 0u && !is_finite(g) {
        atomicMax(&flags[p.flag_slot], p.mark);
    }
    return g;
}

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// torch.optim.SGD; state0 is the momentum buffer (set to the gradient on step 1).
@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.n {
        return;
    }
    let momentum = p.c0;
    var g = checked_grad(i) + p.weight_decay * param[i];
    if momentum != 0.0 {
        var buf = g;
        if p.step > 1u {
            buf = momentum * state0[i] + (1.0 - p.c1) * g;
        }
        state0[i] = buf;
        if p.c2 != 0.0 {
            g = g + momentum * buf;
        } else {
            g = buf;
        }
    }
    param[i] = param[i] - p.lr * g;
}

// torch.optim.Adam / AdamW; state0 and state1 are the first and second moments.
@compute @workgroup_size(256)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.n {
        return;
    }
    let beta1 = p.c0;
    let beta2 = p.c1;
    var w = param[i];
    var g = checked_grad(i);
    if p.decoupled == 1u {
        w = w * (1.0 - p.lr * p.weight_decay);
    } else {
        g = g + p.weight_decay * w;
    }
    let m = beta1 * state0[i] + (1.0 - beta1) * g;
    let v = beta2 * state1[i] + (1.0 - beta2) * g * g;
    state0[i] = m;
    state1[i] = v;
    let t = f32(p.step);
    let bias1 = 1.0 - pow(beta1, t);
    let bias2 = 1.0 - pow(beta2, t);
    param[i] = w - p.lr * (m / bias1) / (sqrt(v / bias2) + p.c2);
}
