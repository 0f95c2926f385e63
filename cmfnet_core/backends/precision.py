"""Which precision the OpenVINO backend runs: fp32, or bf16 where the CPU has it.

``auto`` is ``bf16`` where the CPU has AMX or AVX512-BF16 (OpenVINO reports
the ``BF16`` capability), else ``fp32``; ``bf16`` asked for on a CPU without
it runs fp32, and the backend says so with :data:`NO_BF16_NOTE`. Facts about
the CPU itself stay in :mod:`cmfnet_core.cpu`.
"""
from __future__ import annotations

from .. import cpu
from .core import core

#: OpenVINO's names for the inference precision hint
OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}

NO_BF16_NOTE = ("bf16 was asked for, but this CPU has no native bf16 (AVX512-BF16 or AMX): "
                "running fp32, which gives the same result at the same speed here")


def cpu_has_bf16() -> bool:
    """True where the CPU runs bf16 natively (AMX or AVX512-BF16)."""
    try:
        return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except Exception:  # noqa: BLE001 - fall back to the kernel's view of the CPU
        return cpu.cpu_has_bf16()


def resolve_precision(precision: str) -> str:
    """The precision to ask OpenVINO for: ``auto`` decided for this CPU."""
    if precision == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    if precision not in OV_PRECISION:
        raise ValueError(f"unknown precision {precision!r}; choose auto, fp32 or bf16")
    return precision


def runtime_precision(compiled) -> str:
    """The precision the compiled model really runs in: 'bf16' if any of its nodes does.

    OpenVINO takes a bf16 hint as a wish: on a CPU without bf16 it compiles f32.
    """
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "runtimePrecision" in info and "bf16" in info["runtimePrecision"].astype(str):
            return "bf16"
    return "fp32"
