"""CMFNet's widths and the state-dict layout they imply, without importing paddle.

Kept apart from ``network.py`` so that checking a weights file, listing
installed weights or printing ``--help`` never waits for the framework.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Config:
    """Widths of a CMFNet; the official weights use the defaults."""

    n_feat: int = 96
    scale_unetfeats: int = 48
    reduction: int = 4
    kernel_size: int = 3
    in_c: int = 3
    out_c: int = 3

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def level_widths(self) -> tuple[int, int, int]:
        n, s = self.n_feat, self.scale_unetfeats
        return n, n + s, n + 2 * s

    def flops_per_pixel(self) -> float:
        """FLOPs (2 x multiply-adds) per input pixel, from the state-dict shapes."""
        area = {}
        for key, shape in expected_shapes(self).items():
            if len(shape) == 4:
                area[key] = shape[0] * shape[1] * shape[2] * shape[3] * _relative_area(key)
        return 2.0 * sum(area.values())


def _relative_area(key: str) -> float:
    """Pixels a conv runs on, relative to the input (levels 2 and 3 are downsampled)."""
    if "level2" in key or "skip_attn2" in key or "down12" in key or "up32" in key:
        return 1 / 4
    if "level3" in key or "down23" in key:
        return 1 / 16
    if ".CA." in key:  # runs on the pooled 1x1 map
        return 0.0
    return 1.0


_ATTENTION = {
    "CAB": lambda c, r: {"CA.conv_du.0.weight": (c // r, c, 1, 1), "CA.conv_du.2.weight": (c, c // r, 1, 1)},
    "PAB": lambda c, r: {"PA.pa.0.weight": (c // r, c, 1, 1), "PA.pa.2.weight": (c, c // r, 1, 1)},
    "SAB": lambda c, r: {"SA.conv1.weight": (1, 2, 7, 7)},
}


def expected_shapes(config: Config) -> dict[str, tuple]:
    """Every state-dict key of a CMFNet with this config, and its shape."""
    k, r = config.kernel_size, config.reduction
    n, s = config.n_feat, config.scale_unetfeats
    widths = config.level_widths
    shapes: dict[str, tuple] = {}
    for i in (1, 2, 3):
        shapes[f"shallow_feat{i}.0.weight"] = (n // 2, config.in_c, k, k)
        shapes[f"shallow_feat{i}.1.weight"] = (1,)
        shapes[f"shallow_feat{i}.2.weight"] = (n, n // 2, k, k)

    def block(prefix, kind, c):
        shapes[f"{prefix}.body.0.weight"] = (c, c, k, k)
        shapes[f"{prefix}.body.1.weight"] = (1,)
        shapes[f"{prefix}.body.2.weight"] = (c, c, k, k)
        for name, shape in _ATTENTION[kind](c, r).items():
            shapes[f"{prefix}.{name}"] = shape

    for stage, kind in ((1, "CAB"), (2, "PAB"), (3, "SAB")):
        enc, dec = f"stage{stage}_encoder", f"stage{stage}_decoder"
        for level, c in enumerate(widths, start=1):
            for j in (0, 1):
                block(f"{enc}.encoder_level{level}.{j}", kind, c)
        shapes[f"{enc}.down12.down.1.weight"] = (n + s, n, 1, 1)
        shapes[f"{enc}.down23.down.1.weight"] = (n + 2 * s, n + s, 1, 1)
        for level, c in enumerate(widths, start=1):
            for j in (0, 1):
                block(f"{dec}.decoder_level{level}.{j}", kind, c)
        block(f"{dec}.skip_attn1", kind, widths[0])
        block(f"{dec}.skip_attn2", kind, widths[1])
        shapes[f"{dec}.up21.up.1.weight"] = (n, n + s, 1, 1)
        shapes[f"{dec}.up32.up.1.weight"] = (n + s, n + 2 * s, 1, 1)
    for i in (1, 2, 3):
        shapes[f"sam{i}o.conv1.weight"] = (n, n, k, k)
        shapes[f"sam{i}o.conv2.weight"] = (3, n, k, k)
        shapes[f"sam{i}o.conv3.weight"] = (n, 3, k, k)
    shapes["mix.w"] = (1,)
    shapes["add123.weight"] = (config.out_c, config.out_c, k, k)
    shapes["concat123.weight"] = (n, 3 * n, k, k)
    shapes["tail.weight"] = (config.out_c, n, k, k)
    return shapes
