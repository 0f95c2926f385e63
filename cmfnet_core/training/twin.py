"""PyTorch twin of CMFNet, used only for training.

Written from ``../shared/docs/cmfnet-spec.md``.  Module and parameter names
equal the official ones, so ``state_dict()`` keys are the official keys and
the project's importer converts a saved ``{'state_dict': ...}`` one to one.
One PReLU instance is shared by every block (as in the official model).
Widths are configurable (``n_feat``, ``scale_unetfeats``, ``reduction``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv(cin, cout, k, bias=False, stride=1):
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias, stride=stride)


class CALayer(nn.Module):
    def __init__(self, c, reduction=4, bias=False):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(c, c // reduction, 1, bias=bias), nn.ReLU(inplace=True),
            nn.Conv2d(c // reduction, c, 1, bias=bias), nn.Sigmoid())

    def forward(self, x):
        return x * self.conv_du(x.mean(dim=(2, 3), keepdim=True))


class PALayer(nn.Module):
    def __init__(self, c, reduction=4, bias=False):
        super().__init__()
        self.pa = nn.Sequential(
            nn.Conv2d(c, c // reduction, 1, bias=bias), nn.ReLU(inplace=True),
            nn.Conv2d(c // reduction, c, 1, bias=bias), nn.Sigmoid())

    def forward(self, x):
        return x * self.pa(x)


class SALayer(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        y = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv1(y))


class _Block(nn.Module):
    """conv-act-conv body, attention, residual.  Registration order follows
    the official state dict (CA/PA before the body, SA after it)."""

    def __init__(self, c, k, act, bias, attn_name, attn, attn_first=True):
        super().__init__()
        if attn_first:
            setattr(self, attn_name, attn)
        self.body = nn.Sequential(conv(c, c, k, bias), act, conv(c, c, k, bias))
        if not attn_first:
            setattr(self, attn_name, attn)
        self._attn_name = attn_name

    def forward(self, x):
        return getattr(self, self._attn_name)(self.body(x)) + x


class CAB(_Block):
    def __init__(self, c, k, reduction, bias, act):
        super().__init__(c, k, act, bias, "CA", CALayer(c, reduction, bias))


class PAB(_Block):
    def __init__(self, c, k, reduction, bias, act):
        super().__init__(c, k, act, bias, "PA", PALayer(c, reduction, bias))


class SAB(_Block):
    def __init__(self, c, k, reduction, bias, act):
        super().__init__(c, k, act, bias, "SA", SALayer(7), attn_first=False)


class DownSample(nn.Module):
    def __init__(self, c, s):
        super().__init__()
        self.down = nn.Sequential(
            nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False),
            nn.Conv2d(c, c + s, 1, bias=False))

    def forward(self, x):
        return self.down(x)


class SkipUpSample(nn.Module):
    def __init__(self, c, s):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(c + s, c, 1, bias=False))

    def forward(self, x, y):
        return self.up(x) + y


class Encoder(nn.Module):
    def __init__(self, n_feat, k, reduction, act, bias, s, blk):
        super().__init__()
        l1, l2, l3 = n_feat, n_feat + s, n_feat + 2 * s
        mk = lambda c: blk(c, k, reduction, bias, act)  # noqa: E731
        self.encoder_level1 = nn.Sequential(mk(l1), mk(l1))
        self.encoder_level2 = nn.Sequential(mk(l2), mk(l2))
        self.encoder_level3 = nn.Sequential(mk(l3), mk(l3))
        self.down12 = DownSample(l1, s)
        self.down23 = DownSample(l2, s)

    def forward(self, x):
        e1 = self.encoder_level1(x)
        e2 = self.encoder_level2(self.down12(e1))
        e3 = self.encoder_level3(self.down23(e2))
        return [e1, e2, e3]


class Decoder(nn.Module):
    def __init__(self, n_feat, k, reduction, act, bias, s, blk):
        super().__init__()
        l1, l2, l3 = n_feat, n_feat + s, n_feat + 2 * s
        mk = lambda c: blk(c, k, reduction, bias, act)  # noqa: E731
        self.decoder_level1 = nn.Sequential(mk(l1), mk(l1))
        self.decoder_level2 = nn.Sequential(mk(l2), mk(l2))
        self.decoder_level3 = nn.Sequential(mk(l3), mk(l3))
        self.skip_attn1 = mk(l1)
        self.skip_attn2 = mk(l2)
        self.up21 = SkipUpSample(l1, s)
        self.up32 = SkipUpSample(l2, s)

    def forward(self, outs):
        e1, e2, e3 = outs
        d3 = self.decoder_level3(e3)
        d2 = self.decoder_level2(self.up32(d3, self.skip_attn2(e2)))
        d1 = self.decoder_level1(self.up21(d2, self.skip_attn1(e1)))
        return [d1, d2, d3]


class SAM(nn.Module):
    def __init__(self, c, k=3, bias=False):
        super().__init__()
        self.conv1 = conv(c, c, k, bias)
        self.conv2 = conv(c, 3, k, bias)
        self.conv3 = conv(3, c, k, bias)

    def forward(self, x, x_img):
        img = self.conv2(x) + x_img
        x1 = self.conv1(x) * torch.sigmoid(self.conv3(img)) + x
        return x1, img


class Mix(nn.Module):
    def __init__(self, m=1.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([float(m)]))

    def forward(self, a, b, c):
        f = torch.sigmoid(self.w)
        o = (1 - f) / 2
        return a * o + b * f + c * o, f


class CMFNet(nn.Module):
    def __init__(self, in_c=3, out_c=3, n_feat=96, scale_unetfeats=48,
                 kernel_size=3, reduction=4, bias=False):
        super().__init__()
        self.config = dict(in_c=in_c, out_c=out_c, n_feat=n_feat,
                           scale_unetfeats=scale_unetfeats, kernel_size=kernel_size,
                           reduction=reduction, bias=bias)
        act = nn.PReLU()
        k, s = kernel_size, scale_unetfeats
        self.shallow_feat1 = nn.Sequential(conv(in_c, n_feat // 2, k, bias), act,
                                           conv(n_feat // 2, n_feat, k, bias))
        self.shallow_feat2 = nn.Sequential(conv(in_c, n_feat // 2, k, bias), act,
                                           conv(n_feat // 2, n_feat, k, bias))
        self.shallow_feat3 = nn.Sequential(conv(in_c, n_feat // 2, k, bias), act,
                                           conv(n_feat // 2, n_feat, k, bias))
        self.stage1_encoder = Encoder(n_feat, k, reduction, act, bias, s, CAB)
        self.stage1_decoder = Decoder(n_feat, k, reduction, act, bias, s, CAB)
        self.stage2_encoder = Encoder(n_feat, k, reduction, act, bias, s, PAB)
        self.stage2_decoder = Decoder(n_feat, k, reduction, act, bias, s, PAB)
        self.stage3_encoder = Encoder(n_feat, k, reduction, act, bias, s, SAB)
        self.stage3_decoder = Decoder(n_feat, k, reduction, act, bias, s, SAB)
        self.sam1o = SAM(n_feat, k, bias)
        self.sam2o = SAM(n_feat, k, bias)
        self.sam3o = SAM(n_feat, k, bias)
        self.mix = Mix(1)
        self.add123 = conv(out_c, out_c, k, bias)
        self.concat123 = conv(n_feat * 3, n_feat, k, bias)
        self.tail = conv(n_feat, out_c, k, bias)

    def forward(self, x):
        f1 = self.stage1_decoder(self.stage1_encoder(self.shallow_feat1(x)))
        f2 = self.stage2_decoder(self.stage2_encoder(self.shallow_feat2(x)))
        f3 = self.stage3_decoder(self.stage3_encoder(self.shallow_feat3(x)))
        x1, img1 = self.sam1o(f1[0], x)
        x2, img2 = self.sam2o(f2[0], x)
        x3, img3 = self.sam3o(f3[0], x)
        mixed, fac = self.mix(img1, img2, img3)
        mixed = self.add123(mixed)
        x_final = self.tail(self.concat123(torch.cat([x1, x2, x3], dim=1)))
        return [x_final + mixed, mixed, fac, img1, img2, img3, x_final]


def strip_module(sd):
    return {(k[7:] if k.startswith("module.") else k): v for k, v in sd.items()}


def config_from_state_dict(sd):
    """Infer (n_feat, scale_unetfeats, reduction) from tensor shapes."""
    sd = strip_module(sd)
    n_feat = sd["shallow_feat1.2.weight"].shape[0]
    l2 = sd["stage1_encoder.encoder_level2.0.body.0.weight"].shape[0]
    red_c = sd["stage1_encoder.encoder_level1.0.CA.conv_du.0.weight"].shape[0]
    return dict(n_feat=int(n_feat), scale_unetfeats=int(l2 - n_feat),
                reduction=int(n_feat // red_c))


def build(n_feat=96, scale_unetfeats=None, reduction=4):
    if scale_unetfeats is None:
        scale_unetfeats = n_feat // 2
    return CMFNet(n_feat=n_feat, scale_unetfeats=scale_unetfeats, reduction=reduction)
