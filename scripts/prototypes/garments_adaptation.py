"""PyTorch CPU prototype of the garments domain adaptation (style A -> style B), to
try setups faster than a wgseg run allows; docs/record_of_tries.md gives what it
measured. Not part of the tests. Needs python3-torch and python3-torchvision.

  wgseg data garments --out ga --train 1024 --val 128 --max-objects 2 --style a --seed 0
  wgseg data garments --out gb --train 1024 --val 128 --max-objects 2 --style b --seed 1
  python3 scripts/prototypes/garments_adaptation.py --mode source --seed 0
  python3 scripts/prototypes/garments_adaptation.py --mode proto --seed 0   # bidir_proto

Modes: source (source cross-entropy only, no target batch), mixbn (a target batch
shares every step's forward, so batch norm sees it, but no target loss),
selftrain (the network's own confident predictions), proto (bidir_proto: label
transfer from calibrated source prototypes, both contrasts, target CE --tw,
entropy --ew, from step --warmup on; the target batch shares every forward, as in
mixbn). Prints the target val mIoU and, for proto, how nearest-prototype
labels compare with the classifier's at the end.
"""
import argparse, time
import numpy as np, torch, torch.nn.functional as F
from garments_common import SegNet, augment, load, miou

torch.set_num_threads(2)
p = argparse.ArgumentParser()
p.add_argument('--mode', default='source')  # source | mixbn | selftrain | proto (bidir_proto)
p.add_argument('--steps', type=int, default=300)
p.add_argument('--warmup', type=int, default=150)
p.add_argument('--lr', type=float, default=0.01)
p.add_argument('--batch', type=int, default=4)
p.add_argument('--seed', type=int, default=0)
p.add_argument('--thr', type=float, default=0.9)
p.add_argument('--tw', type=float, default=0.3)
p.add_argument('--weights', default='assets/pretrained/mobilenet_v2_imagenet.safetensors')
p.add_argument('--src', default='ga')
p.add_argument('--tgt', default='gb')
p.add_argument('--layers', type=int, default=14)
p.add_argument('--os', type=int, default=16)
p.add_argument('--feat', default='backbone')  # backbone | mid
p.add_argument('--cw', type=float, default=0.1)
p.add_argument('--ew', type=float, default=0.001)
p.add_argument('--bal', type=float, default=0.5)
p.add_argument('--calm', type=float, default=0.99)
p.add_argument('--plsrc', default='proto')  # proto (label transfer) | logits | both (their product)
a = p.parse_args()
torch.manual_seed(a.seed); np.random.seed(a.seed)

xs, ys = load(a.src, 'train'); xt, yt = load(a.tgt, 'train'); xv, yv = load(a.tgt, 'val'); xsv, ysv = load(a.src, 'val')

net = SegNet(a.weights, a.layers, a.os, a.feat)
C = 6; Ps = None; Pt = None; bias = None; seen_s = torch.zeros(C, dtype=torch.bool); seen_t = torch.zeros(C, dtype=torch.bool)
def batch_protos(f, y):
    fl = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]); yl = y.flatten()
    P = torch.zeros(C, f.shape[1]); cnt = torch.zeros(C)
    ok = yl != 255
    P.index_add_(0, yl[ok], fl[ok]); cnt.index_add_(0, yl[ok], torch.ones(ok.sum()))
    present = cnt > 0; P[present] /= cnt[present, None]
    return P, present
def ema(bank, seen, P, present, m=0.99):
    if bank is None: bank = torch.zeros_like(P)
    first = present & ~seen; upd = present & seen
    bank[first] = P[first]; bank[upd] = m * bank[upd] + (1 - m) * P[upd]
    return bank, seen | present
def proto_ce(f, P, y, s=10.0):
    fl = F.normalize(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]), dim=1); yl = y.flatten()
    logits = s * fl @ F.normalize(P, dim=1).t()
    return F.cross_entropy(logits, yl, ignore_index=255)
opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (1 - s / a.steps) ** 0.9)
print(f'start target {miou(net, xv, yv):.2f}')
t0 = time.time(); placc = []
for step in range(a.steps):
    i = torch.randint(0, len(xs), (a.batch,)); bx, by = augment(xs[i], ys[i])
    adapt = a.mode != 'source' and step >= a.warmup
    if a.mode != 'source':
        j = torch.randint(0, len(xt), (a.batch,)); tx, ty = augment(xt[j], yt[j])
        f, l = net(torch.cat([bx, tx])); ls, lt = l[:a.batch], l[a.batch:]
    else:
        f, ls = net(bx)
    loss = F.cross_entropy(F.interpolate(ls, bx.shape[2:], mode='bilinear', align_corners=False), by)
    if adapt and a.mode == 'selftrain':
        with torch.no_grad():
            pt = F.interpolate(lt, tx.shape[2:], mode='bilinear', align_corners=False).softmax(1)
            conf, pl = pt.max(1); keep = conf >= a.thr
            pl[~keep] = 255
            if keep.any(): placc.append(((pl == ty) & keep).sum().item() / keep.sum().item())
        loss = loss + a.tw * F.cross_entropy(F.interpolate(lt, tx.shape[2:], mode='bilinear', align_corners=False), pl, ignore_index=255)
    fs = f[:a.batch]; hs = fs.shape[2:]
    ysd = F.interpolate(by[:, None].float(), hs, mode='nearest').long()[:, 0]
    if a.mode == 'proto':
        with torch.no_grad():
            P, pr = batch_protos(fs.detach(), ysd); Ps, seen_s = ema(Ps, seen_s, P, pr)
    if adapt and a.mode == 'proto':
        ft = f[a.batch:]; tyd = F.interpolate(ty[:, None].float(), hs, mode='nearest').long()[:, 0]
        with torch.no_grad():
            if bias is None: bias = torch.zeros_like(Ps)
            cal = Ps + bias
            fl = F.normalize(ft.detach().permute(0, 2, 3, 1).reshape(-1, ft.shape[1]), dim=1)
            probs = (10.0 * fl @ F.normalize(cal, dim=1).t()).softmax(1)
            if a.plsrc in ('logits', 'both'):
                pc = lt.detach().permute(0, 2, 3, 1).reshape(-1, C).softmax(1)
                probs = pc if a.plsrc == 'logits' else probs * pc
                probs = probs / probs.sum(1, keepdim=True)
            conf, yhat = probs.max(1); keep = torch.zeros_like(conf, dtype=torch.bool)
            for c in range(C):
                sel = yhat == c; n = int(sel.sum())
                if n == 0 or not seen_s[c]: continue
                k = max(1, int(np.ceil(a.bal * n))); thr = min(a.thr, conf[sel].topk(k).values[-1].item())
                keep |= sel & (conf >= thr)
            pl = torch.where(keep, yhat, torch.full_like(yhat, 255)).view(tyd.shape)
            placc.append(((pl == tyd) & (pl != 255)).sum().item() / max(1, (pl != 255).sum().item()))
            P, pr = batch_protos(ft.detach(), pl); Pt, seen_t = ema(Pt, seen_t, P, pr)
            upd = pr & seen_s; bias[upd] = a.calm * bias[upd] + (1 - a.calm) * (P[upd] - Ps[upd])
        loss = loss + a.cw * (proto_ce(ft, Ps, pl) + proto_ce(fs, torch.where(seen_t[:, None], Pt, torch.zeros_like(Pt)), torch.where(seen_t[ysd], ysd, torch.full_like(ysd, 255))))
        loss = loss + a.tw * F.cross_entropy(lt, pl, ignore_index=255)
        pt_ = lt.softmax(1); loss = loss - a.ew * (pt_ * pt_.clamp_min(1e-12).log()).sum(1).mean()
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if step % 50 == 0: print(step, f'{loss.item():.3f}', f'pl_acc {np.mean(placc[-50:]) if placc else 0:.2f}', f'{time.time() - t0:.0f}s', flush=True)
def diag(x, y, tag):
    net.eval()
    with torch.no_grad():
        f, l = net(x[:64]); yd = F.interpolate(y[:64, None].float(), f.shape[2:], mode='nearest').long()[:, 0].flatten()
        fl = F.normalize(f.permute(0, 2, 3, 1).reshape(-1, f.shape[1]), dim=1)
        pp = (fl @ F.normalize(Ps, dim=1).t()).argmax(1); pc = l.permute(0, 2, 3, 1).reshape(-1, C).argmax(1)
        print(tag, 'proto acc', (pp == yd).float().mean().item(), 'cls acc', (pc == yd).float().mean().item(), 'bg frac', (yd == 0).float().mean().item(), 'pp bg', (pp == 0).float().mean().item())
    net.train()
if Ps is not None: diag(xsv, ysv, 'source'); diag(xv, yv, 'target')
print(f'final target {miou(net, xv, yv):.2f} source {miou(net, xsv, ysv):.2f} time {time.time() - t0:.0f}s')
