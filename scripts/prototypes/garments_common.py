"""What the PyTorch prototypes share: the exported garments (`wgseg data garments`),
the shipped ImageNet MobileNetV2 read from safetensors, random resized crops with
flips, and the confusion-matrix mIoU."""
import json, struct
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
import torchvision
from torchvision.models.segmentation.deeplabv3 import ASPP

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load(d, split):
    names = open(f'{d}/ImageSets/Segmentation/{split}.txt').read().split()
    x = np.stack([np.array(Image.open(f'{d}/JPEGImages/{n}.jpg').convert('RGB')) for n in names])
    y = np.stack([np.array(Image.open(f'{d}/SegmentationClass/{n}.png')) for n in names])
    x = torch.tensor(x).permute(0, 3, 1, 2).float() / 255
    return (x - MEAN) / STD, torch.tensor(y).long()


def st_load(path):
    f = open(path, 'rb'); n = struct.unpack('<Q', f.read(8))[0]; h = json.loads(f.read(n)); buf = f.read()
    return {k: torch.tensor(np.frombuffer(buf[v['data_offsets'][0]:v['data_offsets'][1]], dtype=np.float32).reshape(v['shape']).copy()) for k, v in h.items() if k != '__metadata__' and v['dtype'] == 'F32'}


def mobilenet_features(weights, layers, output_stride):
    m = torchvision.models.mobilenet_v2()
    # Only the integer batch counters are skipped by st_load; anything else missing is an error.
    missing, unexpected = m.load_state_dict(st_load(weights), strict=False)
    assert not unexpected and all(k.endswith('num_batches_tracked') for k in missing), (missing, unexpected)
    if output_stride == 8:
        for i in range(7, 14):
            dw = m.features[i].conv[1][0]
            dw.stride = (1, 1)
            if i > 7: dw.dilation = (2, 2); dw.padding = (2, 2)
    return m.features[:layers]


def augment(x, y, scale=(0.5, 1.0)):
    n, _, h, w = x.shape; ox, oy = [], []
    for i in range(n):
        s = np.random.uniform(*scale); r = np.exp(np.random.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw = int(round(min(w, np.sqrt(s * h * w * r)))); ch = int(round(min(h, np.sqrt(s * h * w / r))))
        x0 = np.random.randint(0, w - cw + 1); y0 = np.random.randint(0, h - ch + 1)
        xi = F.interpolate(x[i:i + 1, :, y0:y0 + ch, x0:x0 + cw], (h, w), mode='bilinear', align_corners=False)
        yi = F.interpolate(y[i:i + 1, None, y0:y0 + ch, x0:x0 + cw].float(), (h, w), mode='nearest').long()[:, 0]
        if np.random.rand() < 0.5: xi = xi.flip(3); yi = yi.flip(2)
        ox.append(xi); oy.append(yi)
    return torch.cat(ox), torch.cat(oy)


def miou(net, x, y, classes=6):
    """net(x) returns (features, logits); logits are upsampled to the image."""
    net.eval(); conf = torch.zeros(classes, classes, dtype=torch.long)
    with torch.no_grad():
        for i in range(0, len(x), 32):
            _, l = net(x[i:i + 32]); pr = F.interpolate(l, x.shape[2:], mode='bilinear', align_corners=False).argmax(1)
            conf += torch.bincount((y[i:i + 32] * classes + pr).flatten(), minlength=classes * classes).view(classes, classes)
    net.train(); c = conf.double(); inter = c.diag(); union = c.sum(0) + c.sum(1) - inter
    iou = inter[union > 0] / union[union > 0]
    return 100 * iou.mean().item()


class SegNet(torch.nn.Module):
    """wgseg's SegModel with a MobileNetV2 backbone: ASPP, a 3x3 conv-BN-ReLU, a 1x1
    classifier. forward returns (the backbone's or the head's features, low logits)."""

    def __init__(self, weights, layers=14, output_stride=16, feat='backbone', classes=6):
        super().__init__()
        self.backbone = mobilenet_features(weights, layers, output_stride)
        cin = self.backbone(torch.zeros(1, 3, 64, 64)).shape[1]
        self.aspp = ASPP(cin, [1, 2, 3], 64)
        self.mid = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.cls = nn.Conv2d(64, classes, 1)
        self.feat = feat
        for mod in self.aspp.modules():
            if isinstance(mod, nn.Dropout): mod.p = 0.0

    def forward(self, x):
        f = self.backbone(x)
        m = self.mid(self.aspp(f))
        return (f if self.feat == 'backbone' else m), self.cls(m)
