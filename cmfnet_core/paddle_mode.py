"""Paddle's eager/static switch, which every thread of the process shares.

Paddle keeps the switch partly per thread and partly process-wide (its C++ tracer): a
thread other than the one that first imported paddle can come up static, where a network
cannot be built or run, and a static-mode export on one thread (backends/export.py) and an
eager run on another break each other. So whatever builds or runs a Paddle network does it
inside :func:`eager_paddle`, and the export holds :data:`LOCK` while it is static.
"""
from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

LOCK = threading.RLock()


def eager() -> None:
    """Put the calling thread in eager mode, if paddle is loaded at all (importing it just
    for this would cost seconds where only cached OpenVINO models run)."""
    paddle = sys.modules.get("paddle")
    if paddle is not None and not paddle.in_dynamic_mode():
        paddle.disable_static()


@contextmanager
def eager_paddle():
    """Hold :data:`LOCK`, in eager mode: no export turns the process static meanwhile."""
    with LOCK:
        eager()
        yield
