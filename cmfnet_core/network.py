"""CMFNet in PaddlePaddle.

Three U-Net branches (channel, pixel and spatial attention) run side by side
on shallow features of the same photo; their supervised-attention heads are
fused by a learnable mix and a concat convolution. Attribute names follow the
official PyTorch implementation exactly, because they are the state-dict keys
of the official checkpoints. See ``shared/docs/cmfnet-spec.md``.
"""
from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .network_config import Config


def conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2D:
    return nn.Conv2D(in_channels, out_channels, kernel_size,
                     padding=kernel_size // 2, bias_attr=False)


def resize(x: paddle.Tensor, factor: float) -> paddle.Tensor:
    # An explicit output size, not scale_factor: paddle2onnx 2.1 cannot export
    # the scale_factor form, and both give the same bilinear weights here.
    h, w = x.shape[2], x.shape[3]
    size = [int(h * factor), int(w * factor)]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Resize(nn.Layer):
    """Bilinear resize by a fixed factor (a parameter-free Sequential slot)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return resize(x, self.factor)


class PReLU(nn.Layer):
    """PReLU with one slope, stored as ``weight`` like torch's (paddle names it ``_weight``)."""

    def __init__(self, init: float = 0.25):
        super().__init__()
        self.weight = self.create_parameter([1], default_initializer=nn.initializer.Constant(init))

    def forward(self, x):
        return F.prelu(x, self.weight)


# --- attention layers -------------------------------------------------------

class CALayer(nn.Layer):
    """Channel attention: squeeze to one value per channel, excite, rescale.

    ``local_window`` > 0 replaces the global pool with a windowed average
    (test-time local statistics), so a tile sees the statistics a network
    trained on patches expects, and tiled output matches whole-image output.
    """

    def __init__(self, channel: int, reduction: int):
        super().__init__()
        self.conv_du = nn.Sequential(
            conv(channel, channel // reduction, 1), nn.ReLU(),
            conv(channel // reduction, channel, 1), nn.Sigmoid())
        self.local_window = 0

    def forward(self, x):
        # local statistics always take the windowed path, even where the tile is no larger
        # than the window: the graph is then the same for every tile shape (the int8
        # models are made per shape by copying one calibration onto it, which needs that),
        # and a pixel's statistics are those of the window around it, as in a larger tile
        if self.local_window:
            y = local_mean(x, self.local_window)
        else:
            y = x.mean(axis=[2, 3], keepdim=True)
        return x * self.conv_du(y)


def local_mean(x: paddle.Tensor, window: int) -> paddle.Tensor:
    """Mean over a ``window`` square around each pixel, clipped at the borders."""
    kh, kw = min(window, x.shape[2]), min(window, x.shape[3])
    # exclusive=True divides by the number of real (unpadded) pixels in each window.
    # One op, and it exports to ONNX/OpenVINO exactly; a paddle.ones count map
    # built inside the graph did not (paddle2onnx 2.1 gave garbage for it).
    # The box is separable (so is its count of real pixels): a column pass then a row
    # pass cost O(window) per pixel instead of O(window^2), with the same result.
    x = F.avg_pool2d(x, [kh, 1], stride=1, padding=[kh // 2, (kh - 1) // 2, 0, 0], exclusive=True)
    return F.avg_pool2d(x, [1, kw], stride=1, padding=[0, 0, kw // 2, (kw - 1) // 2], exclusive=True)


class PALayer(nn.Layer):
    """Pixel attention: a per-pixel gate from two 1x1 convolutions."""

    def __init__(self, channel: int, reduction: int):
        super().__init__()
        self.pa = nn.Sequential(
            conv(channel, channel // reduction, 1), nn.ReLU(),
            conv(channel // reduction, channel, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.pa(x)


class SALayer(nn.Layer):
    """Spatial attention: a 7x7 gate from the channel mean and max maps."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv1 = conv(2, 1, kernel_size)

    def forward(self, x):
        maps = paddle.concat([x.mean(axis=1, keepdim=True), x.max(axis=1, keepdim=True)], axis=1)
        return x * F.sigmoid(self.conv1(maps))


# --- residual attention blocks ---------------------------------------------

class _AttentionBlock(nn.Layer):
    """conv - act - conv, an attention gate, plus the input (CAB/PAB/SAB)."""

    def __init__(self, n_feat: int, kernel_size: int, act: nn.Layer):
        super().__init__()
        self.body = nn.Sequential(conv(n_feat, n_feat, kernel_size), act,
                                  conv(n_feat, n_feat, kernel_size))

    def attend(self, x):
        raise NotImplementedError

    def forward(self, x):
        return self.attend(self.body(x)) + x


class CAB(_AttentionBlock):
    def __init__(self, n_feat, kernel_size, reduction, act):
        super().__init__(n_feat, kernel_size, act)
        self.CA = CALayer(n_feat, reduction)

    def attend(self, x):
        return self.CA(x)


class PAB(_AttentionBlock):
    def __init__(self, n_feat, kernel_size, reduction, act):
        super().__init__(n_feat, kernel_size, act)
        self.PA = PALayer(n_feat, reduction)

    def attend(self, x):
        return self.PA(x)


class SAB(_AttentionBlock):
    def __init__(self, n_feat, kernel_size, reduction, act):
        super().__init__(n_feat, kernel_size, act)
        self.SA = SALayer(7)

    def attend(self, x):
        return self.SA(x)


BLOCKS = {"CAB": CAB, "PAB": PAB, "SAB": SAB}


# --- U-Net -------------------------------------------------------------------

class DownSample(nn.Layer):
    def __init__(self, in_channels: int, s_factor: int):
        super().__init__()
        self.down = nn.Sequential(Resize(0.5), conv(in_channels, in_channels + s_factor, 1))

    def forward(self, x):
        return self.down(x)


class SkipUpSample(nn.Layer):
    def __init__(self, in_channels: int, s_factor: int):
        super().__init__()
        self.up = nn.Sequential(Resize(2.0), conv(in_channels + s_factor, in_channels, 1))

    def forward(self, x, skip):
        return self.up(x) + skip


def _level(block, channels, kernel_size, reduction, act):
    return nn.Sequential(*[block(channels, kernel_size, reduction, act) for _ in range(2)])


class Encoder(nn.Layer):
    def __init__(self, n_feat, kernel_size, reduction, act, scale_unetfeats, block):
        super().__init__()
        blk, s = BLOCKS[block], scale_unetfeats
        self.encoder_level1 = _level(blk, n_feat, kernel_size, reduction, act)
        self.encoder_level2 = _level(blk, n_feat + s, kernel_size, reduction, act)
        self.encoder_level3 = _level(blk, n_feat + 2 * s, kernel_size, reduction, act)
        self.down12 = DownSample(n_feat, s)
        self.down23 = DownSample(n_feat + s, s)

    def forward(self, x):
        enc1 = self.encoder_level1(x)
        enc2 = self.encoder_level2(self.down12(enc1))
        enc3 = self.encoder_level3(self.down23(enc2))
        return [enc1, enc2, enc3]


class Decoder(nn.Layer):
    def __init__(self, n_feat, kernel_size, reduction, act, scale_unetfeats, block):
        super().__init__()
        blk, s = BLOCKS[block], scale_unetfeats
        self.decoder_level1 = _level(blk, n_feat, kernel_size, reduction, act)
        self.decoder_level2 = _level(blk, n_feat + s, kernel_size, reduction, act)
        self.decoder_level3 = _level(blk, n_feat + 2 * s, kernel_size, reduction, act)
        self.skip_attn1 = blk(n_feat, kernel_size, reduction, act)
        self.skip_attn2 = blk(n_feat + s, kernel_size, reduction, act)
        self.up21 = SkipUpSample(n_feat, s)
        self.up32 = SkipUpSample(n_feat + s, s)

    def forward(self, outs):
        enc1, enc2, enc3 = outs
        dec3 = self.decoder_level3(enc3)
        dec2 = self.decoder_level2(self.up32(dec3, self.skip_attn2(enc2)))
        dec1 = self.decoder_level1(self.up21(dec2, self.skip_attn1(enc1)))
        return [dec1, dec2, dec3]


# --- heads -------------------------------------------------------------------

class SAM(nn.Layer):
    """Supervised attention: an image estimate and features gated by it."""

    def __init__(self, n_feat: int, kernel_size: int):
        super().__init__()
        self.conv1 = conv(n_feat, n_feat, kernel_size)
        self.conv2 = conv(n_feat, 3, kernel_size)
        self.conv3 = conv(3, n_feat, kernel_size)

    def forward(self, x, x_img):
        img = self.conv2(x) + x_img
        x1 = self.conv1(x) * F.sigmoid(self.conv3(img)) + x
        return x1, img


class Mix(nn.Layer):
    """Mixed skip connection: a learnable weighting of the three branch images."""

    def __init__(self, m: float = 1.0):
        super().__init__()
        self.w = self.create_parameter([1], default_initializer=nn.initializer.Constant(m))

    def forward(self, a, b, c):
        factor = F.sigmoid(self.w)
        other = (1 - factor) / 2
        return a * other + b * factor + c * other, factor


class CMFNet(nn.Layer):
    """The whole network; ``forward`` returns the restored image (official output 0)."""

    def __init__(self, config: Config = Config()):
        super().__init__()
        self.config = config
        n, s, k, r = config.n_feat, config.scale_unetfeats, config.kernel_size, config.reduction
        act = PReLU()  # ONE slope shared by every block, as in the official model

        def shallow():
            return nn.Sequential(conv(config.in_c, n // 2, k), act, conv(n // 2, n, k))

        self.shallow_feat1, self.shallow_feat2, self.shallow_feat3 = shallow(), shallow(), shallow()
        self.stage1_encoder = Encoder(n, k, r, act, s, "CAB")
        self.stage1_decoder = Decoder(n, k, r, act, s, "CAB")
        self.stage2_encoder = Encoder(n, k, r, act, s, "PAB")
        self.stage2_decoder = Decoder(n, k, r, act, s, "PAB")
        self.stage3_encoder = Encoder(n, k, r, act, s, "SAB")
        self.stage3_decoder = Decoder(n, k, r, act, s, "SAB")
        self.sam1o, self.sam2o, self.sam3o = SAM(n, 3), SAM(n, 3), SAM(n, 3)
        self.mix = Mix(1)
        self.add123 = conv(config.out_c, config.out_c, k)
        self.concat123 = conv(n * 3, n, k)
        self.tail = conv(n, config.out_c, k)

    def forward_all(self, x):
        """The official 7 outputs: [out, mixed_img, factor, img1, img2, img3, x_final]."""
        feats, imgs = [], []
        branches = [
            (self.shallow_feat1, self.stage1_encoder, self.stage1_decoder, self.sam1o),
            (self.shallow_feat2, self.stage2_encoder, self.stage2_decoder, self.sam2o),
            (self.shallow_feat3, self.stage3_encoder, self.stage3_decoder, self.sam3o),
        ]
        for shallow, encoder, decoder, sam in branches:
            dec1 = decoder(encoder(shallow(x)))[0]
            feat, img = sam(dec1, x)
            feats.append(feat)
            imgs.append(img)
        mixed, factor = self.mix(*imgs)
        mixed_img = self.add123(mixed)
        x_final = self.tail(self.concat123(paddle.concat(feats, axis=1)))
        return [x_final + mixed_img, mixed_img, factor, *imgs, x_final]

    def forward(self, x):
        return self.forward_all(x)[0]

    def set_local_statistics(self, window: int) -> None:
        """Channel attention pools over a ``window``-pixel square (0: global, as official).

        The window is given at input resolution and halves with each U-Net level.
        """
        for name, layer in self.named_sublayers():
            if isinstance(layer, CALayer):
                level = next((int(part[-1]) for part in name.split(".")
                              if part[:-1] in ("encoder_level", "decoder_level", "skip_attn")), 1)
                layer.local_window = window // 2 ** (level - 1) if window else 0
