"""What the CPU is and which instructions it has (the kernel's /proc/cpuinfo).

One home for these facts: the OpenVINO backend, the benchmark and training
all ask here.  Off Linux the answers fall back to "unknown" / no flags.
"""
from __future__ import annotations

import functools
import os
import platform

#: Flags that mean bf16 arithmetic runs natively (AVX512-BF16, or AMX's bf16 tiles).
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
#: AMX's int8 tiles (Intel Sapphire Rapids and later).
AMX_INT8_FLAGS = frozenset({"amx_int8"})
#: int8 dot-product instructions (VNNI: AVX512 or the AVX2-width AVX-VNNI); without them,
#: int8 convolutions take several AVX2 instructions per multiply-add.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@functools.lru_cache(maxsize=1)
def _cpuinfo_fields() -> dict[str, str]:
    """The first processor's ``key: value`` lines."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
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


def cpu_flags() -> frozenset[str]:
    return frozenset(_cpuinfo_fields().get("flags", "").split())


def cpu_has_bf16() -> bool:
    """True where the kernel reports native bf16 (AVX512-BF16 or AMX)."""
    return bool(cpu_flags() & BF16_FLAGS)


def cpu_has_amx_int8(flags: frozenset[str] | None = None) -> bool:
    return bool((cpu_flags() if flags is None else flags) & AMX_INT8_FLAGS)


def cpu_has_vnni(flags: frozenset[str] | None = None) -> bool:
    return bool((cpu_flags() if flags is None else flags) & VNNI_FLAGS)


def cpu_name() -> str:
    return _cpuinfo_fields().get("model name") or platform.processor() or platform.machine() or "unknown CPU"


def describe() -> str:
    """'AMD EPYC, 2 logical CPUs, avx2' - the model, core count and best vector extension."""
    flags = cpu_flags()
    best = next((f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags), "no AVX2")
    return f"{cpu_name()}, {os.cpu_count()} logical CPUs, {best}"
