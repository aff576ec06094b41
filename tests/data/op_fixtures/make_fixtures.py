"""Independent NumPy (float64) references for `wgseg op` round-trip tests.

Run: python3 make_fixtures.py  (needs numpy and safetensors). Writes, per op,
NAME_in.safetensors (inputs + grad_output, f32) and NAME_expected.safetensors
(output and grad_<input>, f32) computed in float64 by NumPy, not by wgseg.
"""
import numpy as np
from safetensors.numpy import save_file

rng = np.random.default_rng(20261124)


def f32(d):
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in d.items()}


# matmul: batched [3, 4, 5] @ [3, 5, 6]
a = rng.uniform(-1, 1, (3, 4, 5)).astype(np.float32)
b = rng.uniform(-1, 1, (3, 5, 6)).astype(np.float32)
g = rng.uniform(-1, 1, (3, 4, 6)).astype(np.float32)
A, B, G = a.astype(np.float64), b.astype(np.float64), g.astype(np.float64)
save_file(f32({"input": a, "other": b, "grad_output": g}), "matmul_in.safetensors")
save_file(
    f32({"output": A @ B, "grad_input": G @ B.transpose(0, 2, 1), "grad_other": A.transpose(0, 2, 1) @ G}),
    "matmul_expected.safetensors",
)

# softmax over dim 1 of [2, 7, 3]
x = rng.uniform(-3, 3, (2, 7, 3)).astype(np.float32)
g = rng.uniform(-1, 1, (2, 7, 3)).astype(np.float32)
X, G = x.astype(np.float64), g.astype(np.float64)
e = np.exp(X - X.max(axis=1, keepdims=True))
y = e / e.sum(axis=1, keepdims=True)
dx = y * (G - (G * y).sum(axis=1, keepdims=True))
save_file(f32({"input": x, "grad_output": g}), "softmax_in.safetensors")
save_file(f32({"output": y, "grad_input": dx}), "softmax_expected.safetensors")
