"""Which precision the OpenVINO backend runs: fp32, bf16 where the CPU has it, or int8.

``auto`` is the explicit rule :func:`auto_precision`: int8 on a kind of CPU
(:func:`cpu_kind`) only where int8 (the shipped recipe, ``quantize.py``) was
*measured* faster than the best float path there and faithful enough
(:data:`INT8_MEASURED` against the bar :data:`INT8_MIN_PSNR` /
:data:`INT8_MAX_DEV_LOSS_DB`); otherwise ``bf16`` where the CPU has AMX or
AVX512-BF16, else ``fp32``. A CPU whose kind cannot be told (no flags to read:
Windows, macOS) or that nobody measured (ARM, x86 before AVX2, AVX-512 without
VNNI) gets the float path. Those measurements were made with the bundled
weights; other weights pass their own check at calibration before ``auto``
runs them in int8 (``quantize.int8_verdict``). ``bf16`` asked for on a CPU
without it runs fp32, and the backend says so with :data:`NO_BF16_NOTE`.
Facts about the CPU itself stay in :mod:`cmfnet_core.cpu`.
"""
from __future__ import annotations

import importlib.util

from .. import cpu
from ..i18n import N_

#: OpenVINO's inference precision hint for the float precisions (int8: :func:`inference_hint`)
OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
RESOLVED = ("fp32", "bf16", "int8")  # what auto resolves to on a CPU, and what can be asked for besides
#: what ``auto`` runs on a GPU: its native half precision (OpenVINO's own default there)
GPU_AUTO = "fp16"

NO_BF16_NOTE = N_("bf16 was asked for, but this CPU has no native bf16 (AVX512-BF16 or AMX): "
                  "running fp32, which gives the same result at the same speed here")

#: the bar int8 must meet before ``auto`` may pick it (issue 12): at least this PSNR against
#: the fp32 output on every dev crop, and at most this loss of PSNR on the dev pairs (mean)
INT8_MIN_PSNR = 40.0
INT8_MAX_DEV_LOSS_DB = 0.05
#: and at least this speed-up over the best float path: within 10% is noise on a shared
#: machine (the bench's rule too), and not worth int8's fidelity (7 dB under bf16's at the
#: worst crop, measured)
INT8_MIN_SPEEDUP = 1.10

#: int8 as measured per kind of CPU (:func:`cpu_kind`) by tests/bench/int8_fidelity.py: the
#: shipped recipe against fp32 on 8 dev crops of 512 x 384 (each task's default weights), and
#: its speed on a 512 x 512 tile against the best float path there (fp32 or bf16). A kind
#: that is not here has not been measured, and auto does not pick int8 on it.
INT8_MEASURED = {
    # Xeon Sapphire Rapids (AMX-INT8, AMX-BF16, AVX512-VNNI), 2 vCPUs, the process on one of
    # them and a training run loading both: int8 as it runs here (NNCF's floating-point rest
    # in bf16) 1.06x bf16 at the best of 12 interleaved rounds (649 vs 691 ms a 512 tile;
    # medians 1.10x, 1.17x in another run): under INT8_MIN_SPEEDUP, so bf16 stays. 44.8 dB
    # against fp32 at the worst (51.2 mean, bf16: 51.9 / 54.6), -0.025 dB on the dev pairs.
    # AMX's bf16 is already fast, and CMFNet's 24-48 channels fill few int8 tiles (the bench
    # reaches 10% of this CPU's int8 peak, 28% of its bf16 peak). Rerun on a free CPU
    # (tests/bench/int8_fidelity.py) before changing this figure.
    "amx": {"speedup_vs_best": 1.06, "psnr_vs_fp32_min": 44.8, "dev_pair_change_db": -0.025},
    # AMD Zen 4 (AVX512-VNNI, AVX512-BF16, no AMX), 2 vCPUs, the process on one of them and
    # a training run on the other: int8 1110 ms a 512 tile against bf16 1600 and fp32 3250
    # (medians of 7 interleaved rounds): 1.44x bf16, 2.93x fp32. AVX512-BF16 has bf16 dot
    # products but no tiles, so bf16 is only 2.0x fp32 here, and VNNI's int8 dot products
    # pay. Fidelity as on AMX (same recipe and IR): 44.8 dB worst, 51.2 mean, -0.025 dB.
    # AMD Zen 5 (same flags, VP2INTERSECT besides), both cores free: int8 361 ms, bf16 528,
    # fp32 876 (medians of 7, 2 threads): 1.46x bf16, the same call.
    "vnni": {"speedup_vs_best": 1.44, "psnr_vs_fp32_min": 44.8, "dev_pair_change_db": -0.025},
    # AMD Zen 1 (AVX2 only, no VNNI, no bf16), 2 vCPUs: the recipe with the overflow fix on
    # every layer (quantize.RECIPE_NO_VNNI; the plain one gave 35.2 dB here), int8 824 ms a 512
    # tile against fp32 1289 on the free machine, 2 threads (1.56x; 1.53x on one core beside a
    # training run), medians of 7 interleaved rounds. 42.7 dB against fp32 at the worst (dehaze;
    # 52.7 mean), -0.036 dB on the dev pairs (worst crop -0.14).
    "avx2": {"speedup_vs_best": 1.56, "psnr_vs_fp32_min": 42.7, "dev_pair_change_db": -0.036},
}

#: int8's speed-up over the best float path with the full-size network (the authors' size:
#: n_feat over :data:`LIGHT_MAX_FEAT`), where it was measured apart from the light network's
#: figure above. Speed does not depend on the weights' values (measured with random ones,
#: tests/bench/full_size_speed.py); fidelity does, so full-size weights always pass their own
#: check (quantize.int8_verdict) before auto runs them in int8. A kind not here keeps the
#: light network's verdict (int8 gains more, not less, on wider convolutions: issue 24 saw
#: int8 9.9x faster than Paddle fp32 with a full-size checkpoint on such a CPU).
INT8_SPEEDUP_FULL_SIZE = {
    # Xeon with AMX (KVM), 2 vCPUs shared by seven sessions (load average 3.6-12), 2 threads:
    # int8 1.19x bf16 on a 256 tile (the engine's full-size tile; median of per-round ratios,
    # 13 rounds in three runs, 1.03-1.25 but one; 1.21x in the quietest run), 1.22x and 1.16x
    # on the app's 192 x 256 and 384 x 512 previews, where the light network gained 1.06: the
    # full network's 96-192 channels fill AMX's int8 tiles better. 55.5 dB from fp32 on random
    # weights (bf16: 62.6). Rerun on a free CPU before changing this figure.
    "amx": 1.19,
}
#: the widest network that counts as light (the engine's tile rule uses the same line)
LIGHT_MAX_FEAT = 48


def is_full_size(weights) -> bool:
    """True for weights of the full-size network (the authors' n_feat 96), not the light one."""
    return weights is not None and weights.config.n_feat > LIGHT_MAX_FEAT


def cpu_kind(flags: frozenset[str] | None = None) -> str:
    """The kind of CPU as far as int8 goes, from its flags (default: this one's): ``amx``
    (AMX int8 tiles), ``vnni`` (int8 dot products, no AMX), ``avx2`` (AVX2, neither VNNI
    nor AVX-512), ``avx512`` (AVX-512 without VNNI: oneDNN takes another int8 path there,
    not measured), ``other`` (an x86 before AVX2, or not x86: ARM's ``Features``) or
    ``unknown`` (no flags to read: Windows and macOS have no /proc/cpuinfo)."""
    flags = cpu.cpu_flags() if flags is None else flags
    if not flags:
        return "unknown"
    if cpu.cpu_has_amx_int8(flags):
        return "amx"
    if cpu.cpu_has_vnni(flags):
        return "vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "other"


def int8_pays(flags: frozenset[str] | None = None, full_size: bool = False) -> bool:
    """True where int8 was measured clearly faster than the best float path, within the bar
    (``full_size``: for the full-size network, :data:`INT8_SPEEDUP_FULL_SIZE`)."""
    kind = cpu_kind(flags)
    figures = INT8_MEASURED.get(kind)
    if not figures:
        return False
    speedup = INT8_SPEEDUP_FULL_SIZE.get(kind, figures["speedup_vs_best"]) if full_size \
        else figures["speedup_vs_best"]
    return bool(speedup >= INT8_MIN_SPEEDUP
                and figures["psnr_vs_fp32_min"] >= INT8_MIN_PSNR
                and figures["dev_pair_change_db"] >= -INT8_MAX_DEV_LOSS_DB)


def auto_precision(flags: frozenset[str] | None = None, bf16: bool | None = None,
                   int8: bool = True, full_size: bool = False) -> str:
    """What ``auto`` runs on a CPU with these flags (default: this one's). ``bf16``: whether
    bf16 runs natively (default: :func:`cpu_has_bf16`); ``int8``: whether int8 can run at
    all (nncf installed); ``full_size``: for the full-size network, not the light one."""
    if int8 and int8_pays(flags, full_size=full_size):
        return "int8"
    if bf16 is None:
        bf16 = cpu_has_bf16(flags)
    return "bf16" if bf16 else "fp32"


def float_precision() -> str:
    """The float path ``auto`` runs on this CPU where int8 is not wanted: bf16 or fp32."""
    return auto_precision(int8=False)


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """True where the CPU runs bf16 natively (AMX or AVX512-BF16): as its flags say (default:
    this CPU's), or, where there are none to read (Windows, macOS), as OpenVINO says (its
    ``BF16`` capability). A CPU with flags but none of these (ARM, older x86) runs fp32."""
    flags = cpu.cpu_flags() if flags is None else flags
    if flags:
        return bool(flags & cpu.BF16_FLAGS)
    return "BF16" in cpu.openvino_view()[0]


def resolve_precision(precision: str, device: str = "cpu", weights=None) -> str:
    """The precision to ask OpenVINO for: ``auto`` decided for this CPU (and for the size of
    network ``weights`` are, where given), or the GPU's fp16."""
    if precision == "auto" and device == "gpu":
        return GPU_AUTO
    if precision == "auto":
        # nncf is a dependency, but auto must never pick what cannot run
        return auto_precision(int8=importlib.util.find_spec("nncf") is not None,
                              full_size=is_full_size(weights))
    if precision not in RESOLVED:
        raise ValueError(f"unknown precision {precision!r}; choose auto, {', '.join(RESOLVED)}")
    return precision


def inference_hint(precision: str, device: str = "cpu") -> str:
    """OpenVINO's inference precision hint for a resolved precision. int8: the quantised
    ops run int8 whatever the hint; what NNCF left in floating point runs bf16 where the
    CPU has it (measured on AMX: 1.4x faster than in f32, 888 against 1270 ms a 512 tile;
    44.8 dB from fp32 at the worst either way, 51.2 against 53.3 mean), else f32."""
    if precision == "int8":
        if device == "gpu":
            return "f16"
        return "bf16" if cpu_has_bf16() else "f32"
    return OV_PRECISION[precision]


def runtime_precision(compiled) -> str:
    """The precision the compiled model really runs in: 'int8' if any convolution runs
    int8, else 'bf16' or 'fp16' if any node does (a GPU runs fp16), else 'fp32'.

    OpenVINO takes a bf16 hint as a wish: on a CPU without bf16 it compiles f32.
    """
    seen = set()
    for op in compiled.get_runtime_model().get_ops():
        info = op.get_rt_info()
        if "runtimePrecision" not in info:
            continue
        ran = info["runtimePrecision"].astype(str)
        if "bf16" in ran:
            seen.add("bf16")
        elif "f16" in ran:
            seen.add("fp16")
        if ran in ("i8", "u8") and info["layerType"].astype(str) == "Convolution":
            seen.add("int8")
    return next((p for p in ("int8", "bf16", "fp16") if p in seen), "fp32")
