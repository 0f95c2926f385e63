"""CMFNet Restore's engine: the network, its weights, and tiled restoration of photos.

The public names are those of the engine contract (docs/ARCHITECTURE.md)::

    from cmfnet_core import Restorer, CancelToken, Cancelled

Heavy frameworks (paddle, openvino) are imported only when a network is built,
and the engine module itself on first use of its names, so importing this
package and printing ``cmfnet --help`` stay fast.
"""
import importlib as _importlib
import os as _os

# Paddle's C++ logging (glog) writes INFO/WARNING lines straight to stderr, through the
# progress bar; keep errors only, unless the user asked for more.
_os.environ.setdefault("GLOG_minloglevel", "2")

from .imageio import ImageError
from .weights import TASKS, WeightsError, load_network

__all__ = ["TASKS", "CancelToken", "Cancelled", "ImageError", "Restorer", "WeightsError",
           "load_network"]

_FROM_ENGINE = ("CancelToken", "Cancelled", "Restorer")


def __getattr__(name: str):
    """The engine's names, imported when first asked for (PEP 562)."""
    if name in _FROM_ENGINE:
        value = getattr(_importlib.import_module(".engine", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
