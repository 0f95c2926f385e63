"""CMFNet Restore's engine: the network, its weights, and tiled restoration of photos.

Heavy frameworks (paddle, openvino) are imported only when a network is built,
so importing this package and printing ``cmfnet --help`` stay fast.
"""
import os as _os

# Paddle's C++ logging (glog) writes INFO/WARNING lines straight to stderr, through the
# progress bar; keep errors only, unless the user asked for more.
_os.environ.setdefault("GLOG_minloglevel", "2")

from .weights import TASKS, WeightsError, load_network

__all__ = ["TASKS", "WeightsError", "load_network"]
