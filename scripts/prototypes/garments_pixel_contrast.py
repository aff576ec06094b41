"""PyTorch CPU prototype of supervised cross-image pixel contrast on the garments
(experiments/pixel_contrast.yaml), to try setups faster than a wgseg run allows;
docs/record_of_tries.md gives what it measured. Not part of the tests. Needs
python3-torch and python3-torchvision.

  wgseg data garments --out ga --train 1024 --val 128 --max-objects 2 --style a --seed 0
  python3 scripts/prototypes/garments_pixel_contrast.py --cw 0 --seed 0     # cross-entropy alone
  python3 scripts/prototypes/garments_pixel_contrast.py --cw 0.1 --seed 0   # the method

As wgseg's method: a projection head (1x1 conv, BN, ReLU, 1x1 conv, L2 norm) on the
backbone's features; labels and predictions taken at the feature grid (nearest);
per image and class, half hard (mispredicted) and half easy anchors, at most
--views each and --samples in all; the supervised contrast of the anchors with each
other and with per-class memories of segment means and pixels (--memory rows each).
Prints the val mIoU.
"""
import argparse, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from garments_common import SegNet, augment, load, miou

torch.set_num_threads(2)
p = argparse.ArgumentParser()
p.add_argument('--steps', type=int, default=300)
p.add_argument('--warmup', type=int, default=50)
p.add_argument('--lr', type=float, default=0.01)
p.add_argument('--batch', type=int, default=8)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--cw', type=float, default=0.1)
p.add_argument('--temp', type=float, default=0.1)
p.add_argument('--base-temp', type=float, default=0.07)
p.add_argument('--samples', type=int, default=1024)
p.add_argument('--views', type=int, default=4)
p.add_argument('--memory', type=int, default=500)
p.add_argument('--pixel-freq', type=int, default=10)
p.add_argument('--proj', type=int, default=64)
p.add_argument('--os', type=int, default=16)
p.add_argument('--layers', type=int, default=14)
p.add_argument('--feat', default='backbone', choices=['backbone', 'head'], help='features the projection head reads')
p.add_argument('--train', type=int, default=1024, help='labelled training images used')
p.add_argument('--data', default='ga')
p.add_argument('--classes', type=int, default=6, help='classes with the background (11: all ten garments)')
p.add_argument('--weights', default='assets/pretrained/mobilenet_v2_imagenet.safetensors')
a = p.parse_args()
torch.manual_seed(a.seed); np.random.seed(a.seed)
C = a.classes
x, y = load(a.data, 'train'); x, y = x[:a.train], y[:a.train]; xv, yv = load(a.data, 'val')
net = SegNet(a.weights, a.layers, a.os, feat=a.feat, classes=C)
net.eval()  # eval: the probe must not move the running statistics
with torch.no_grad(): cin = net(torch.zeros(1, 3, 64, 64))[0].shape[1]
net.train()
proj = nn.Sequential(nn.Conv2d(cin, cin, 1), nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, a.proj, 1))
# Anchors and memory pixels draw from their own generator, so that both arms of a
# seed see the same batches and augmentations (paired, as wgseg's arms).
sampling = torch.Generator().manual_seed(a.seed + 1_000_003)
seg_mem = [torch.zeros(0, a.proj) for _ in range(C)]; pix_mem = [torch.zeros(0, a.proj) for _ in range(C)]


def sample_anchors(e, lab, pred):
    """e [B, D, h, w]; lab, pred [B, h, w]: (anchor rows, labels) or None."""
    b = e.shape[0]; rows, labels = [], []
    per = [[c for c in lab[i].unique().tolist() if c != 255 and (lab[i] == c).sum() > a.views] for i in range(b)]
    total = sum(map(len, per))
    if total == 0: return None
    views = min(a.samples // total, a.views)
    ef = e.permute(0, 2, 3, 1).reshape(b, -1, e.shape[1])
    for i in range(b):
        for c in per[i]:
            hard = ((lab[i] == c) & (pred[i] != c)).flatten().nonzero()[:, 0]
            easy = ((lab[i] == c) & (pred[i] == c)).flatten().nonzero()[:, 0]
            nh = min(len(hard), views // 2) if len(easy) >= views - views // 2 else min(len(hard), views - len(easy))
            ne = views - nh
            idx = torch.cat([hard[torch.randperm(len(hard), generator=sampling)[:nh]], easy[torch.randperm(len(easy), generator=sampling)[:ne]]])
            rows.append(ef[i, idx]); labels += [c] * len(idx)
    return torch.cat(rows), torch.tensor(labels)


def contrast(z, lab):
    mem = [(torch.cat([seg_mem[c], pix_mem[c]]), c) for c in range(C) if len(seg_mem[c]) + len(pix_mem[c])]
    zc = torch.cat([z] + [m for m, _ in mem]); lc = torch.cat([lab] + [torch.full((len(m),), c) for m, c in mem])
    s = z @ zc.t() / a.temp
    self_mask = torch.zeros_like(s, dtype=torch.bool); self_mask[:, :len(z)] = torch.eye(len(z), dtype=torch.bool)
    pos = (lab[:, None] == lc[None]) & ~self_mask; neg = lab[:, None] != lc[None]
    neg_lse = torch.logsumexp(s.masked_fill(~neg, -1e9), 1, keepdim=True)
    lp = s - torch.logaddexp(s, neg_lse)
    keep = pos.sum(1) > 0
    if not keep.any(): return None
    return -(a.temp / a.base_temp) * ((lp * pos).sum(1)[keep] / pos.sum(1)[keep]).mean()


def enqueue(e, lab):
    for i in range(e.shape[0]):
        for c in lab[i].unique().tolist():
            if c == 255: continue
            px = e[i].permute(1, 2, 0)[lab[i] == c]
            seg_mem[c] = torch.cat([F.normalize(px.mean(0, keepdim=True), dim=1), seg_mem[c]])[:a.memory]
            pix_mem[c] = torch.cat([px[torch.randperm(len(px), generator=sampling)[:a.pixel_freq]], pix_mem[c]])[:a.memory]


params = list(net.parameters()) + list(proj.parameters())
opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / a.steps) ** 0.9)
t0 = time.time()
for step in range(a.steps):
    i = torch.randint(0, len(x), (a.batch,)); bx, by = augment(x[i], y[i])
    f, low = net(bx)
    loss = F.cross_entropy(F.interpolate(low, bx.shape[2:], mode='bilinear', align_corners=True), by, ignore_index=255)
    c_loss = torch.zeros(())
    if a.cw > 0:
        e = F.normalize(proj(f), dim=1)
        lab = F.interpolate(by[:, None].float(), e.shape[2:], mode='nearest').long()[:, 0]
        if step >= a.warmup:
            pred = low.argmax(1)
            s = sample_anchors(e, lab, pred)
            if s is not None:
                c = contrast(*s)
                if c is not None: c_loss = c; loss = loss + a.cw * c
        if a.memory > 0:
            with torch.no_grad(): enqueue(e.detach(), lab)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if step % 100 == 0: print(step, f'{loss.item():.3f} contrast {c_loss.item():.3f}', f'{time.time() - t0:.0f}s', flush=True)
print(f'final val {miou(net, xv, yv, C):.2f} time {time.time() - t0:.0f}s')
