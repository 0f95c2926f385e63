"""The Paddle executor: the network in Paddle dygraph, fp32, on the CPU or a GPU.

The reference every other path is measured against, and the NVIDIA (CUDA) GPU path.
"""
from __future__ import annotations

import numpy as np

from ..paddle_mode import eager, eager_paddle
from ..weights import Weights, build_network
from . import default_threads


class PaddleBackend:
    """Paddle dygraph, fp32: the reference every other path is measured against."""

    name = "paddle"
    precision = "fp32"

    def __init__(self, weights: Weights, device: str = "cpu", threads: int | None = None,
                 local_window: int = 0):
        import paddle

        eager()
        if device == "gpu":
            paddle.set_device("gpu")
        else:
            paddle.set_device("cpu")
            paddle.base.core.set_num_threads(threads or default_threads())
        self._paddle = paddle
        self.device = device
        self.network = build_network(weights, local_window=local_window)

    def run(self, batch: np.ndarray) -> np.ndarray:
        paddle = self._paddle
        with eager_paddle(), paddle.no_grad():  # maybe another thread than the one that built it
            return self.network(paddle.to_tensor(np.ascontiguousarray(batch, np.float32))).numpy()
