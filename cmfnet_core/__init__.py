"""CMFNet Restore's engine: the network, its weights, and tiled restoration of photos.

Heavy frameworks (paddle, openvino) are imported only when a network is built,
so importing this package and printing ``cmfnet --help`` stay fast.
"""
from .weights import TASKS, WeightsError, load_network

__all__ = ["TASKS", "WeightsError", "load_network"]
