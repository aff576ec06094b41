// The EMA prototype bank [C, D] and the class-wise domain-bias calibration of
// bi-directional pixel-prototype contrast.
// #include prototypes

@group(0) @binding(6) var<storage, read> counts: array<u32>;
@group(0) @binding(9) var<storage, read> batch: array<f32>;
@group(0) @binding(10) var<storage, read_write> bank: array<f32>;
@group(0) @binding(11) var<storage, read_write> flags: array<u32>;
@group(0) @binding(12) var<storage, read> flags_in: array<u32>;
@group(0) @binding(13) var<storage, read> source: array<f32>;
@group(0) @binding(14) var<storage, read_write> bias: array<f32>;
@group(0) @binding(15) var<storage, read> bias_in: array<f32>;
@group(0) @binding(16) var<storage, read_write> calib: array<f32>;

// Bank EMA in place for classes present in the batch; a class's first sighting copies.
@compute @workgroup_size(256)
fn ema_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.classes * p.dim {
        return;
    }
    let c = i / p.dim;
    if counts[c] == 0u {
        return;
    }
    let m = p.momentum;
    bank[i] = select(m * bank[i] + (1.0 - m) * batch[i], batch[i], flags_in[c] == 0u);
}

// Marks the classes of the batch as seen (after ema_update, which reads the flags).
@compute @workgroup_size(256)
fn ema_flags(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = thread_index(gid, nwg);
    if c >= p.classes {
        return;
    }
    if counts[c] > 0u {
        flags[c] = 1u;
    }
}

// bias_c <- m * bias_c + (1 - m) * (target batch mean_c - source bank prototype_c), for
// classes in the target batch that the source bank has seen.
@compute @workgroup_size(256)
fn bias_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.classes * p.dim {
        return;
    }
    let c = i / p.dim;
    if counts[c] == 0u || flags_in[c] == 0u {
        return;
    }
    let m = p.momentum;
    bias[i] = m * bias[i] + (1.0 - m) * (batch[i] - source[i]);
}

@compute @workgroup_size(256)
fn calibrated(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if i >= p.classes * p.dim {
        return;
    }
    calib[i] = source[i] + bias_in[i];
}
