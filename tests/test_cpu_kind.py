"""Which kind of CPU this is, and what ``auto`` runs on it, from what the OS lets us read.

int8 was measured on three kinds of x86 CPU; every other CPU, including one whose
flags cannot be read at all (Windows and macOS have no /proc/cpuinfo) and ARM (whose
cpuinfo says ``Features``), gets the float path: fp32, or bf16 where the CPU shows it.
The cpuinfo files under ``fixtures/cpuinfo`` are real machines' (shortened).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from cmfnet_core import cpu
from cmfnet_core.backends import precision

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "cpuinfo"
ARM = FIXTURES / "arm64_neoverse_v1.txt"  # AWS Graviton3: has bf16 and int8 matmul, never measured
PRE_AVX2 = FIXTURES / "x86_sandy_bridge.txt"
AVX512_NO_VNNI = FIXTURES / "x86_skylake_avx512.txt"
NO_CPUINFO = FIXTURES / "absent"  # Windows, macOS


@pytest.fixture
def cpuinfo(monkeypatch):
    """Show the tool another machine's /proc/cpuinfo (and, optionally, OpenVINO's view)."""
    def use(path: Path, openvino=(frozenset({"FP32", "INT8"}), "")):
        monkeypatch.setattr(cpu, "CPUINFO", path)
        cpu.forget()
        monkeypatch.setattr(cpu, "openvino_view", lambda: openvino)

    yield use
    cpu.forget()


def test_arm_features_are_read_but_no_kind_with_int8_figures(cpuinfo):
    cpuinfo(ARM)
    assert {"asimd", "bf16", "i8mm"} <= cpu.cpu_flags()  # ARM's "Features", not x86's "flags"
    assert precision.cpu_kind() == "other"
    assert "ARM" in cpu.describe()
    # ARM's bf16 is not x86's AVX512-BF16/AMX, and nothing was measured there: fp32
    assert precision.auto_precision(int8=True) == "fp32"


def test_no_cpuinfo_means_unknown_not_a_cpu_without_flags(cpuinfo):
    cpuinfo(NO_CPUINFO)
    assert cpu.cpu_flags() == frozenset()
    assert precision.cpu_kind() == "unknown"
    assert precision.auto_precision(int8=True) == "fp32"


def test_where_no_flags_can_be_read_openvino_says_whether_bf16_runs(cpuinfo):
    cpuinfo(NO_CPUINFO, openvino=(frozenset({"FP32", "BF16", "INT8"}), "Intel(R) Xeon(R) Platinum 8480+"))
    assert precision.auto_precision(int8=True) == "bf16"  # a float path: never int8 unmeasured
    assert cpu.cpu_name() == "Intel(R) Xeon(R) Platinum 8480+"  # the kernel had no name to give


@pytest.mark.parametrize("path, kind", [(PRE_AVX2, "other"), (AVX512_NO_VNNI, "avx512")])
def test_x86_kinds_nobody_measured_get_the_float_path(cpuinfo, path, kind):
    cpuinfo(path, openvino=(frozenset({"FP32", "BF16"}), ""))  # flags, when there, decide
    assert precision.cpu_kind() == kind
    assert kind not in precision.INT8_MEASURED
    assert precision.auto_precision(int8=True) == "fp32"


def test_int8_asked_for_on_an_unmeasured_cpu_takes_the_cautious_recipe(cpuinfo):
    """Without int8 dot products seen in the flags, the sums may saturate: 7-bit weights."""
    from cmfnet_core.backends.quantize import RECIPE_NO_VNNI, shipped_recipe

    for path in (ARM, NO_CPUINFO, PRE_AVX2, AVX512_NO_VNNI):
        cpuinfo(path)
        assert shipped_recipe() == RECIPE_NO_VNNI, path.name


def test_this_machine_is_read_as_before():
    """The real /proc/cpuinfo where there is one (the test machines are Linux x86)."""
    if not Path("/proc/cpuinfo").exists():
        pytest.skip("no /proc/cpuinfo on this OS")
    assert "sse2" in cpu.cpu_flags() or "asimd" in cpu.cpu_flags()
    assert precision.cpu_kind() in ("amx", "vnni", "avx2", "avx512", "other")


def test_openvino_reports_the_cpu_on_every_os():
    pytest.importorskip("openvino")
    capabilities, name = cpu.openvino_view()
    assert "FP32" in capabilities and name


@pytest.mark.parametrize("path", [ARM, NO_CPUINFO])
def test_restore_on_an_unmeasured_cpu_neither_calibrates_nor_runs_int8(cpuinfo, monkeypatch, capsys,
                                                                       photo_file, tmp_path, path):
    """Issue 21: shown an ARM cpuinfo, ``cmfnet restore --task dehaze`` used to calibrate and
    run int8. Now it runs the float path, and the int8 calibration is never reached."""
    pytest.importorskip("openvino")
    from cmfnet_core import cli, engine
    from cmfnet_core.backends import quantize

    cpuinfo(path)

    def no_calibration(*args, **kwargs):
        raise AssertionError("int8 calibration on a CPU nobody measured")

    monkeypatch.setattr(quantize, "_quantise", no_calibration)
    built = []
    make_backend = engine.make_backend

    def recording(*args, **kwargs):
        backend = make_backend(*args, **kwargs)
        built.append(backend.precision)
        return backend

    monkeypatch.setattr(engine, "make_backend", recording)
    out = tmp_path / "out.png"
    assert cli.main(["restore", str(photo_file), "--task", "dehaze", "-q", "-o", str(out)]) == 0
    assert out.exists() and built == ["fp32"]
    assert "calibrating" not in capsys.readouterr().err
