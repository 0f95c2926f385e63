"""The degradation detector's network: a small CNN that tells blur, haze and raindrops apart.

It reads two views of a photo (``detect.py`` makes them): the whole scene
downscaled to a square (haze and drops are scene-scale properties) and a few
crops at close to full resolution (blur is a fine-scale one). Each view has its
own small encoder, pooled to mean and max features; the head reads the scene
features beside the mean and the max over the crops and gives one logit per
class of ``CLASSES``.
"""
from __future__ import annotations

import paddle
from paddle import nn

CLASSES = ("deblur", "dehaze", "deraindrop", "none")
SCENE_WIDTHS = (8, 16, 32, 64)   # stride 2 each: a 160 scene ends at 10 x 10
DETAIL_WIDTHS = (8, 16, 32, 64)  # stride 2 each too: the first 3 x 3 filters still see every pixel,
                                 # and a stride-1 first layer made training 3x slower on a CPU core
HIDDEN = 64


def encoder(widths) -> nn.Sequential:
    layers, channels = [], 3
    for width in widths:
        layers += [nn.Conv2D(channels, width, 3, stride=2, padding=1), nn.ReLU()]
        channels = width
    return nn.Sequential(*layers)


def mean_and_max(features: paddle.Tensor) -> paddle.Tensor:
    # max, not amax (the twin's): the same values, and paddle2onnx, which exports this network
    # for OpenVINO, has no amax (it aborts the whole process on an operator it lacks)
    return paddle.concat([features.mean(axis=[2, 3]), features.max(axis=[2, 3])], axis=1)


class DegradationNet(nn.Layer):
    """``forward(scene, details)``: scene N x 3 x S x S, details N x K x 3 x D x D,
    both RGB in [0, 1]; returns N x len(CLASSES) logits."""

    def __init__(self):
        super().__init__()
        self.scene = encoder(SCENE_WIDTHS)
        self.detail = encoder(DETAIL_WIDTHS)
        features = 2 * SCENE_WIDTHS[-1] + 2 * 2 * DETAIL_WIDTHS[-1]
        self.head = nn.Sequential(nn.Linear(features, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, len(CLASSES)))

    def forward(self, scene, details):
        n, k, c, d, _ = details.shape
        s = mean_and_max(self.scene(scene - 0.5))
        crops = mean_and_max(self.detail(details.reshape([n * k, c, d, d]) - 0.5)).reshape([n, k, -1])
        return self.head(paddle.concat([s, crops.mean(axis=1), crops.max(axis=1)], axis=1))
