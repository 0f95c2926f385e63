"""What the CPU is and which instructions it has.

One home for these facts: the OpenVINO backend, the benchmark and training
all ask here. The instruction flags come from the kernel (Linux's
``/proc/cpuinfo``: ``flags`` on x86, ``Features`` on ARM); where the OS offers
no such file (Windows, macOS) the flags are empty, which means "not known",
never "none". OpenVINO reports the CPU's full name and its optimisation
capabilities on every OS (:func:`openvino_view`), so those stand in for the
kernel where it is silent.
"""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

#: where Linux describes the CPU (a test points this at a fixture file)
CPUINFO = Path("/proc/cpuinfo")

#: Flags that mean bf16 arithmetic runs natively (AVX512-BF16, or AMX's bf16 tiles).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: AMX's int8 tiles (Intel Sapphire Rapids and later).
AMX_INT8_FLAGS = frozenset({"amx_int8"})
#: int8 dot-product instructions (VNNI: AVX512 or the AVX2-width AVX-VNNI); without them,
#: int8 convolutions take several AVX2 instructions per multiply-add.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


def read_cpuinfo(path: Path) -> dict[str, str]:
    """The first processor's ``key: value`` lines of a cpuinfo file ({} if unreadable)."""
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    if fields:
                        break
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


@functools.lru_cache(maxsize=1)
def _cpuinfo_fields() -> dict[str, str]:
    return read_cpuinfo(CPUINFO)


def forget() -> None:
    """Read the CPU's description again on next use (tests that swap :data:`CPUINFO`)."""
    _cpuinfo_fields.cache_clear()


def cpu_flags() -> frozenset[str]:
    """The kernel's instruction flags: x86's ``flags`` or ARM's ``Features``; empty where
    the OS has no /proc/cpuinfo (then nothing is known about them)."""
    fields = _cpuinfo_fields()
    return frozenset((fields.get("flags") or fields.get("Features") or "").split())


def cpu_has_bf16() -> bool:
    """True where the kernel reports native bf16 (AVX512-BF16 or AMX)."""
    return bool(cpu_flags() & BF16_FLAGS)


def cpu_has_amx_int8(flags: frozenset[str] | None = None) -> bool:
    return bool((cpu_flags() if flags is None else flags) & AMX_INT8_FLAGS)


def cpu_has_vnni(flags: frozenset[str] | None = None) -> bool:
    return bool((cpu_flags() if flags is None else flags) & VNNI_FLAGS)


@functools.lru_cache(maxsize=1)
def openvino_view() -> tuple[frozenset[str], str]:
    """OpenVINO's view of the CPU, on any OS: its ``OPTIMIZATION_CAPABILITIES`` (e.g. FP32,
    BF16, INT8) and its full name; (empty, "") where OpenVINO is missing or fails."""
    try:
        from .backends.core import core

        capabilities = frozenset(str(c) for c in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        return capabilities, str(core().get_property("CPU", "FULL_DEVICE_NAME")).strip()
    except Exception:  # noqa: BLE001 - no OpenVINO, or no CPU plugin: nothing known from it
        return frozenset(), ""


def cpu_name() -> str:
    """The CPU's model name: the kernel's, else OpenVINO's (Windows, macOS), else the OS's guess."""
    return (_cpuinfo_fields().get("model name") or openvino_view()[1] or platform.processor()
            or platform.machine() or "unknown CPU")


def describe() -> str:
    """'AMD EPYC, 2 logical CPUs, avx2' - the model, core count and best vector extension."""
    flags = cpu_flags()
    if not flags:
        best = "instruction flags unknown"
    elif flags & {"asimd", "neon"}:
        best = "ARM"
    else:
        best = next((f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags), "no AVX2")
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs, {best}"
