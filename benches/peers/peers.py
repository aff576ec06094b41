#!/usr/bin/python3
"""PyTorch CPU peer of `wgseg bench` and of the quickstart's training step.

It times the same cases under the same names and shape strings as `wgseg bench`, so a
`wgseg bench --json` file can be joined to this table row for row, plus one
MaskContrast step of experiments/quickstart.yaml's network (compare it with the
"step ... ms" line of `wgseg profile experiments/quickstart.yaml`). Ratios taken on one
machine in one session are what the figures are for; see README.md.

    /usr/bin/python3 benches/peers/peers.py [--threads 2] [--iters 10] [--filter S]
        [--json out.json] [--wgseg bench.json] [--weights PATH]
"""
import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.grad import conv2d_input, conv2d_weight

ROOT = Path(__file__).resolve().parents[2]
WARMUP = 2  # as wgseg bench: the first runs pay for allocation and lazy set-up


def median(times):
    # wgseg takes sorted[len / 2] (the upper median for even counts); same here, so
    # the two tables agree on what "median" means.
    return sorted(times)[len(times) // 2]


def measure(run, iters):
    for _ in range(WARMUP):
        run()
    times = []
    for _ in range(max(iters, 1)):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    return median(times)


# --- cases: (name, shape, flops or None, prepare) where prepare() builds the inputs
# once and returns the function to time. Preparing lazily keeps --filter cheap.

def conv_label(n, cin, cout, size, k, d, stride, groups):
    s = f"N{n} {cin}->{cout} {size}x{size} {k}x{k} d{d}"
    if stride > 1:
        s += f" s{stride}"
    if groups > 1:
        s += f" g{groups}"
    return s


def conv_cases():
    layers = [
        (4, 32, 32, 64, 3, 1, 1, 1),
        (4, 32, 32, 64, 3, 2, 1, 1),
        (2, 64, 64, 32, 3, 6, 1, 1),
        (4, 256, 32, 32, 1, 1, 1, 1),
        # MobileNetV2's depthwise layers at the quickstart's batch and 64-px images.
        (8, 96, 96, 32, 3, 1, 2, 96),
        (8, 144, 144, 16, 3, 1, 1, 144),
        (8, 384, 384, 4, 3, 1, 1, 384),
    ]
    cases = []
    for layer in layers:
        n, cin, cout, size, k, d, stride, groups = layer
        pad = d if k == 3 else 0  # same-size output at stride 1, as in wgseg
        hout = (size + 2 * pad - d * (k - 1) - 1) // stride + 1
        flops = 2.0 * n * cout * hout * hout * (cin // groups) * k * k
        family = "depthwise" if groups > 1 and groups == cin else "conv2d"
        label = conv_label(*layer)
        geo = dict(stride=stride, padding=pad, dilation=d, groups=groups)

        def prepare(pass_, n=n, cin=cin, cout=cout, size=size, k=k, groups=groups,
                    hout=hout, geo=geo):
            x = torch.randn(n, cin, size, size)
            w = torch.randn(cout, cin // groups, k, k)
            g = torch.randn(n, cout, hout, hout)  # a fixed upstream gradient
            if pass_ == "forward":
                # no_grad: wgseg's forward records no graph either.
                def run():
                    with torch.no_grad():
                        F.conv2d(x, w, None, **geo)
            elif pass_ == "backward-data":
                # torch.nn.grad calls aten.convolution_backward with one output
                # wanted: the very kernel autograd runs for that gradient alone.
                def run():
                    conv2d_input(x.shape, w, g, **geo)
            elif pass_ == "backward-weight":
                def run():
                    conv2d_weight(x, w.shape, g, **geo)
            else:
                xr, wr = x.clone().requires_grad_(), w.clone().requires_grad_()

                # autograd.grad returns the gradients instead of accumulating into
                # .grad, so nothing has to be zeroed between runs.
                def run():
                    y = F.conv2d(xr, wr, None, **geo)
                    torch.autograd.grad(y, (xr, wr), g)
            return run

        for pass_ in ["forward", "backward-data", "backward-weight", "forward+backward"]:
            # forward+backward is three passes of the forward's size (wgseg counts 3x).
            f = 3 * flops if pass_ == "forward+backward" else flops
            cases.append((f"{family} {pass_}", label, f,
                          lambda p=pass_, prep=prepare: prep(p)))
    return cases


def matmul_case(m, k, n):
    def prepare():
        a, b = torch.randn(m, k), torch.randn(k, n)
        return lambda: torch.mm(a, b)
    return ("matmul", f"{m}x{k} @ {k}x{n}", 2.0 * m * k * n, prepare)


# --- the quickstart step (experiments/quickstart.yaml, method: maskcontrast) ---------

B, SIZE, EMBED, QUEUE = 8, 64, 32, 128
TEMPERATURE, MOMENTUM = 0.5, 0.99


def blob_masks(gen):
    """A centred ellipse per image covering ~20-60% of it: a stand-in for a garment's
    saliency mask (values 0/1)."""
    yy, xx = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(),
                            indexing="ij")
    masks = []
    for _ in range(B):
        frac, aspect, cy, cx = (torch.rand(4, generator=gen) * torch.tensor([0.4, 0.7, 8, 8])
                                + torch.tensor([0.2, 0.7, SIZE / 2 - 4, SIZE / 2 - 4])).tolist()
        area = frac * SIZE * SIZE / math.pi  # pi * a * b = covered pixels
        a, b = (area * aspect) ** 0.5, (area / aspect) ** 0.5
        masks.append((((yy - cy) / a) ** 2 + ((xx - cx) / b) ** 2 <= 1).float())
    return torch.stack(masks)


def quickstart_case(weights):
    def prepare():
        sys.path.insert(0, str(ROOT / "scripts" / "prototypes"))
        # garments_common.SegNet is wgseg's SegModel: MobileNetV2 features[:14] (96
        # channels at stride 16) from the shipped safetensors, torchvision's
        # ASPP(96, [1, 2, 3], 64) with dropout 0, a 3x3 conv-BN-ReLU, a 1x1 classifier
        # with bias; 33 outputs = 32 embedding channels + 1 saliency logit.
        from garments_common import SegNet
        torch.manual_seed(0)
        query = SegNet(str(weights), layers=14, output_stride=16, feat="head",
                       classes=EMBED + 1).train()
        key = copy.deepcopy(query).train().requires_grad_(False)
        opt = torch.optim.SGD(query.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
        gen = torch.Generator().manual_seed(0)
        # Two views made once: wgseg makes them on the device each step, but their
        # augmentation is data work, not the network's, so it is left out here.
        xq, xk = torch.randn(B, 3, SIZE, SIZE, generator=gen), torch.randn(B, 3, SIZE, SIZE, generator=gen)
        mq, mk = blob_masks(gen), blob_masks(gen)
        queue = F.normalize(torch.randn(QUEUE, EMBED, generator=gen), dim=1)
        salient = mq > 0.5
        owner = torch.arange(B).view(B, 1, 1).expand(B, SIZE, SIZE)[salient]
        neg = 1.0 - mq.mean()  # balanced BCE: positives weighted by the negatives' share
        qparams, kparams = list(query.parameters()), list(key.parameters())

        def embed(net, x):
            out = F.interpolate(net(x)[1], (SIZE, SIZE), mode="bilinear", align_corners=False)
            return F.normalize(out[:, :EMBED], dim=1), out[:, EMBED]

        def step():
            emb, sal = embed(query, xq)
            with torch.no_grad():
                kemb, _ = embed(key, xk)
                protos = (kemb * mk[:, None]).sum((2, 3)) / mk.sum((1, 2))[:, None]
                keys = torch.cat([F.normalize(protos, dim=1), queue])
            # InfoNCE of each salient query pixel: its own image's prototype is the
            # positive, the other images' and the queue's are negatives.
            pix = emb.permute(0, 2, 3, 1)[salient]
            contrast = F.cross_entropy(pix @ keys.t() / TEMPERATURE, owner)
            bce = -(neg * mq * F.logsigmoid(sal)
                    + (1 - neg) * (1 - mq) * F.logsigmoid(-sal)).mean()
            loss = contrast + bce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            # The key follows the query by EMA of its parameters only, as wgseg's
            # ema_update_module does: the key's BN running statistics come from its
            # own train-mode forwards, so no buffers are copied.
            with torch.no_grad():
                for pk, pq in zip(kparams, qparams):
                    pk.mul_(MOMENTUM).add_(pq, alpha=1 - MOMENTUM)
            return loss.detach()  # unused by the timing; lets a check see it fall
        return step

    return ("quickstart step", f"MobileNetV2 14 layers OS16, B{B} {SIZE}px", None, prepare)


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10, help="median of N timed runs")
    ap.add_argument("--filter", default="", help="only cases whose name contains this")
    ap.add_argument("--json", type=Path, help="write the measurements here")
    ap.add_argument("--wgseg", type=Path, help="a `wgseg bench --json` file to compare with")
    ap.add_argument("--weights", type=Path,
                    default=Path("assets/pretrained/mobilenet_v2_imagenet.safetensors"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    weights = a.weights if a.weights.exists() or a.weights.is_absolute() else ROOT / a.weights

    cases = conv_cases() + [matmul_case(512, 512, 512), matmul_case(1024, 256, 1024),
                            quickstart_case(weights)]
    cases = [c for c in cases if a.filter in c[0]]
    if not cases:
        sys.exit(f"peers.py: no case matches {a.filter!r}")
    peer = {}
    if a.wgseg:
        peer = {(m["name"], m["shape"]): m for m in json.loads(a.wgseg.read_text())}

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu_model()}")
    head = f"{'case':<28} {'shape':<36} {'ms':>9} {'GFLOP/s':>8}"
    if a.wgseg:
        head += f" {'wgseg ms':>9} {'wgseg/torch GFLOP/s ratio':>26}"
    print(head)
    rows = []
    for name, shape, flops, prepare in cases:
        ms = measure(prepare(), a.iters)
        gflops = flops / ms / 1e6 if flops else None
        rows.append({"name": name, "shape": shape, "ms": ms, "gflops": gflops})
        gf = f"{gflops:.2f}" if gflops else "-"
        line = f"{name:<28} {shape:<36} {ms:>9.3f} {gf:>8}"
        if a.wgseg:
            w = peer.get((name, shape))
            if w is None:
                line += f" {'-':>9} {'-':>26}"
            else:
                # Same work on both sides, so the GFLOP/s ratio is the inverse time
                # ratio; the times give it where no FLOP count does.
                ratio = (w["gflops"] / gflops if w.get("gflops") and gflops
                         else ms / w["ms"])
                line += f" {w['ms']:>9.3f} {ratio:>26.2f}"
        print(line, flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
