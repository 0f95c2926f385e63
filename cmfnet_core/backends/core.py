"""The process's one OpenVINO runtime (``openvino.Core``), made on first use.

Export, capability checks and compiling all ask it; openvino is imported only
then, so importing the backends stays quick.
"""
from __future__ import annotations

import threading

_core = None
_lock = threading.Lock()


def core():
    """One OpenVINO Core per process."""
    global _core
    with _lock:
        if _core is None:
            import openvino as ov

            _core = ov.Core()
        return _core
