"""The OpenVINO backend against the Paddle fp32 reference.

Fidelity is measured on the conformance material: fp32 must match Paddle to
1e-4; bf16 must stay >= 50 dB PSNR from fp32. The conformance checkpoint is
the README's STRONG variant (every conv scaled by 1.7, attention gates by 4,
chosen so fp32 conformance is sensitive to every tensor); those gains also
amplify bf16 rounding, so bf16 is checked on the same weights brought back to
ordinary scale (the documented factors divided out: PyTorch's default init). On
the strong weights themselves the 50 dB target is not met where bf16 runs (40.3 dB
measured on AVX512-BF16): there that test is a strict expected failure, so the gap
stays visible. On a CPU without native bf16 a bf16 request compiles to f32: the
tests assert that (the compiled model's runtime precision, the note for the
user) and that the result is then exactly the fp32 one.

Exports are shared across this module through one cache folder, so only a few
exports run (each takes seconds: paddle.jit.save dominates). A test that must see
an export (a cache miss) uses its own empty folder instead, so it holds in any order.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("paddle2onnx")

INPUTS = ["deblur1_crop_1x3x128x128", "rand_1x3x64x96"]


from tests.conftest import psnr  # noqa: E402


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ov-cache")


@pytest.fixture
def ov_cache(shared_cache, monkeypatch, isolated_user_dirs):
    """One model cache for the whole module (overrides the per-test folder)."""
    monkeypatch.setenv("CMFNET_CACHE_DIR", str(shared_cache))
    return shared_cache / "openvino"


@pytest.fixture(scope="module")
def strong(conformance_dir):
    from cmfnet_core.weights import read_weights

    return read_weights(conformance_dir / "small_official.pth")


@pytest.fixture(scope="module")
def plain(strong):
    """The conformance weights with the README's STRONG factors divided out."""
    from cmfnet_core.weights import Weights

    state = {}
    for key, value in strong.state.items():
        if value.ndim == 4:
            value = value / (4.0 if any(g in key for g in (".CA.", ".PA.", ".SA.")) else 1.7)
        state[key] = np.asarray(value, np.float32)
    return Weights(state=state, config=strong.config, meta={"task": "deblur"})


@pytest.fixture(scope="module")
def paddle_network(strong):
    from cmfnet_core.weights import build_network

    return build_network(strong)


def paddle_run(network, batch: np.ndarray) -> np.ndarray:
    import paddle

    with paddle.no_grad():
        return network(paddle.to_tensor(batch)).numpy()


def load_input(conformance_dir, name):
    return (np.load(conformance_dir / f"input_{name}.npy"),
            np.load(conformance_dir / f"small_out0_{name}.npy"))


@pytest.mark.parametrize("name", INPUTS)
def test_fp32_matches_paddle_reference(isolated_user_dirs, conformance_dir, strong, paddle_network, name,
                                       capfd):
    """Exported here, into this test's own empty cache: a miss whatever ran before."""
    from cmfnet_core.backends.openvino import OpenVINOBackend

    batch, official = load_input(conformance_dir, name)
    capfd.readouterr()
    backend = OpenVINOBackend(strong, precision="fp32", tile_shape=batch.shape[2:], exact_shape=True)
    assert not backend.cache_hit
    assert capfd.readouterr().out == ""  # the export's chatter never reaches stdout
    import paddle

    assert paddle.in_dynamic_mode()  # the static-mode export leaves paddle as it found it
    out = backend.run(batch)
    reference = paddle_run(paddle_network, batch)
    assert out.shape == batch.shape
    assert np.abs(out - reference).max() <= 1e-4
    assert np.abs(out - official).max() <= 1e-4


def test_fp32_precision_hint_is_explicit(ov_cache, strong):
    from cmfnet_core.backends.openvino import OpenVINOBackend

    backend = OpenVINOBackend(strong, precision="fp32", tile_shape=(128, 128))
    import openvino as ov

    assert backend.compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert backend.precision == "fp32"


def test_edge_tile_is_padded_like_paddle(ov_cache, conformance_dir, strong, paddle_network):
    """A tile smaller than the compiled shape: reflect-padded, run, cropped back."""
    from cmfnet_core.backends.openvino import OpenVINOBackend

    batch, _ = load_input(conformance_dir, "deblur1_crop_1x3x128x128")
    small = np.ascontiguousarray(batch[:, :, :72, :104])  # 72 x 104 inside a 128 x 128 model
    backend = OpenVINOBackend(strong, precision="fp32", tile_shape=(128, 128))
    out = backend.run(small)
    assert out.shape == small.shape
    padded = np.pad(small, ((0, 0), (0, 0), (0, 128 - 72), (0, 128 - 104)), mode="reflect")
    reference = paddle_run(paddle_network, padded)[:, :, :72, :104]
    assert np.abs(out - reference).max() <= 1e-4
    with pytest.raises(ValueError, match="does not fit"):
        backend.run(np.zeros((1, 3, 136, 64), np.float32))


def native_bf16() -> bool:
    from cmfnet_core.backends.precision import cpu_has_bf16

    return cpu_has_bf16()


# What a bf16 request really runs depends on the CPU: bf16 on AMX/AVX512-BF16, f32 elsewhere.
# Each test first asserts which precision the compiled model runs, then what is right for it.
EXPECTED_BF16_RUN = "bf16" if native_bf16() else "fp32"


def _fp32_and_bf16(weights):
    from cmfnet_core.backends.openvino import OpenVINOBackend
    from cmfnet_core.backends.precision import NO_BF16_NOTE

    fp32 = OpenVINOBackend(weights, precision="fp32", tile_shape=(128, 128))
    bf16 = OpenVINOBackend(weights, precision="bf16", tile_shape=(128, 128))
    assert fp32.precision == "fp32" and fp32.precision_note is None
    assert bf16.requested_precision == "bf16"
    assert bf16.precision == EXPECTED_BF16_RUN
    assert bf16.precision_note == (None if EXPECTED_BF16_RUN == "bf16" else NO_BF16_NOTE)
    return fp32, bf16


def _bf16_psnr_on_conformance_inputs(conformance_dir, weights):
    fp32, bf16 = _fp32_and_bf16(weights)
    return {name: psnr(fp32.run(load_input(conformance_dir, name)[0]),
                       bf16.run(load_input(conformance_dir, name)[0])) for name in INPUTS}


def test_a_bf16_request_runs_what_the_cpu_has_and_says_so(ov_cache, plain):
    _fp32_and_bf16(plain)


def test_bf16_psnr_on_conformance_inputs(ov_cache, conformance_dir, plain):
    for name, value in _bf16_psnr_on_conformance_inputs(conformance_dir, plain).items():
        if EXPECTED_BF16_RUN == "bf16":
            assert value >= 50.0, f"{name}: bf16 {value:.1f} dB from fp32"
        else:  # fp32 ran: the very same computation
            assert value == float("inf"), f"{name}: fp32 run for bf16 differs from fp32 ({value:.1f} dB)"


@pytest.mark.xfail(condition=EXPECTED_BF16_RUN == "bf16", strict=True,
                   reason="target not met where bf16 runs: measured 40.3 dB on the STRONG conformance "
                          "checkpoint as shipped (its x1.7/x4 gains amplify bf16 rounding; AVX512-BF16, no AMX)")
def test_bf16_psnr_on_the_strong_conformance_checkpoint(ov_cache, conformance_dir, strong):
    """>= 50 dB from fp32. Without native bf16 the request runs fp32, which meets it exactly."""
    for name, value in _bf16_psnr_on_conformance_inputs(conformance_dir, strong).items():
        assert value >= 50.0, f"{name}: {EXPECTED_BF16_RUN} {value:.1f} dB from fp32"


def test_bf16_psnr_on_a_restored_photo(ov_cache, plain, tmp_path):
    """A whole photo through the engine: bf16 OpenVINO against the Paddle fp32 reference."""
    import cv2

    from cmfnet_core.engine import Restorer
    from cmfnet_core.weights import save_weights

    from tests.conftest import SAMPLES

    path = save_weights(plain, tmp_path / "plain.pdparams", task="deblur", provenance={"kind": "test"})
    image = cv2.cvtColor(cv2.imread(str(SAMPLES / "deblur_2.png")), cv2.COLOR_BGR2RGB)
    image = cv2.resize(image, (216, 160), interpolation=cv2.INTER_AREA)
    results, ran = {}, {}
    for backend, precision in (("paddle", "fp32"), ("openvino", "fp32"), ("openvino", "bf16")):
        restorer = Restorer("deblur", path, tile=128, overlap=32, backend=backend, precision=precision)
        results[backend, precision] = restorer.restore(image).astype(np.float64) / 255
        ran[backend, precision] = {b.precision for b in restorer._backends.values()}
    assert ran == {("paddle", "fp32"): {"fp32"}, ("openvino", "fp32"): {"fp32"},
                   ("openvino", "bf16"): {EXPECTED_BF16_RUN}}
    reference = results["paddle", "fp32"]
    assert np.abs(results["openvino", "fp32"] - reference).max() <= 1.0 / 255
    if EXPECTED_BF16_RUN == "bf16":
        assert psnr(results["openvino", "bf16"], reference) >= 50.0
    else:
        assert np.array_equal(results["openvino", "bf16"], results["openvino", "fp32"])


def test_second_construction_hits_the_cache(ov_cache, strong, monkeypatch):
    from cmfnet_core.backends import export
    from cmfnet_core.backends.openvino import OpenVINOBackend, forget_compiled

    first = OpenVINOBackend(strong, precision="fp32", tile_shape=(128, 128))
    assert first.model_path.is_file() and first.model_path.with_suffix(".bin").is_file()
    assert first.model_path.parent.parent == ov_cache
    forget_compiled()  # as a new process would: nothing compiled in memory

    def no_export(*args, **kwargs):
        raise AssertionError("exported again despite a cached model")

    monkeypatch.setattr(export, "export_onnx", no_export)
    second = OpenVINOBackend(strong, precision="fp32", tile_shape=(128, 128))
    assert second.cache_hit and second.export_seconds == 0.0
    assert second.model_path == first.model_path
    batch = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    np.testing.assert_array_equal(first.run(batch), second.run(batch))


def test_cache_key_changes_with_what_the_model_depends_on(strong, plain):
    from cmfnet_core.backends.cache import model_dir, model_key

    base = model_dir(model_key(strong, (128, 128), 0))
    assert model_dir(model_key(strong, (128, 128), 0)) == base
    assert model_dir(model_key(plain, (128, 128), 0)) != base
    assert model_dir(model_key(strong, (128, 192), 0)) != base
    assert model_dir(model_key(strong, (128, 128), 64)) != base


def test_compiled_shape_is_the_tile_shape_by_default():
    from cmfnet_core.backends.export import compiled_shape

    assert compiled_shape((256, 512)) == (256, 512)
    assert compiled_shape((344, 512)) == (344, 512)
    assert compiled_shape((344, 512), step=64) == (384, 512)
    assert compiled_shape((68, 100)) == (72, 104)
    with pytest.raises(ValueError):
        compiled_shape((70, 64))


def test_auto_precision_is_bf16_exactly_where_bf16_really_runs(ov_cache, plain, monkeypatch):
    """Judged by what OpenVINO compiles, not by the detection auto itself uses: where int8
    does not pay (test_int8.py holds that rule), auto asks for bf16 where a bf16 request
    really runs bf16, and otherwise for fp32, with no note."""
    from cmfnet_core.backends import precision
    from cmfnet_core.backends.openvino import OpenVINOBackend
    from cmfnet_core.backends.precision import resolve_precision

    monkeypatch.setattr(precision, "INT8_MEASURED", {})  # as on a CPU where int8 does not pay
    bf16 = OpenVINOBackend(plain, precision="bf16", tile_shape=(128, 128))
    auto = OpenVINOBackend(plain, precision="auto", tile_shape=(128, 128))
    assert resolve_precision("auto") == auto.requested_precision == auto.precision == bf16.precision
    assert auto.precision_note is None
    assert resolve_precision("fp32") == "fp32"
    with pytest.raises(ValueError):
        resolve_precision("fp16")


@pytest.mark.slow
def test_local_statistics_export_matches_paddle(ov_cache, conformance_dir, strong):
    from cmfnet_core.backends.openvino import OpenVINOBackend
    from cmfnet_core.weights import build_network

    batch, _ = load_input(conformance_dir, "deblur1_crop_1x3x128x128")
    backend = OpenVINOBackend(strong, precision="fp32", tile_shape=(128, 128), local_window=64)
    reference = paddle_run(build_network(strong, local_window=64), batch)
    assert np.abs(backend.run(batch) - reference).max() <= 1e-4


def test_only_the_last_few_compiled_models_stay_in_memory(monkeypatch):
    """Each compiled model holds buffers for its tile shape: the process keeps the
    COMPILED_KEEP most recently used, and compiles (loads) an evicted one again."""
    from pathlib import Path

    from cmfnet_core.backends import openvino

    compiled = []

    class CountingCore:
        def compile_model(self, xml, device, properties):
            compiled.append(xml)
            return object()

    monkeypatch.setattr(openvino, "core", CountingCore)
    openvino.forget_compiled()
    keep = openvino.COMPILED_KEEP
    models = [Path(f"model-{i}.xml") for i in range(keep + 1)]
    try:
        first = openvino._compile(models[0], {})
        for model in models[1:keep]:
            openvino._compile(model, {})
        assert openvino._compile(models[0], {}) is first  # used again: now the most recent
        openvino._compile(models[keep], {})  # one too many: models[1], the least recent, goes
        assert compiled == [str(m) for m in models]
        assert openvino._compile(models[0], {}) is first
        openvino._compile(models[1], {})
        assert compiled == [str(m) for m in models] + [str(models[1])]
    finally:
        openvino.forget_compiled()


def test_prune_cache_drops_least_recently_used(tmp_path, monkeypatch):
    import os

    from cmfnet_core.backends.cache import cache_root, prune_cache

    monkeypatch.setenv("CMFNET_CACHE_DIR", str(tmp_path))
    root = cache_root()
    for age, name in enumerate(["cmfnet-a", "cmfnet-b", "cmfnet-c"]):
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "model.bin").write_bytes(b"x" * 600_000)
        (folder / "info.json").write_text("{}")
        os.utime(folder / "info.json", (1000 + age, 1000 + age))  # a is the oldest
    (root / "compiled").mkdir()
    (root / "compiled" / "1.blob").write_bytes(b"x" * 100_000)
    os.utime(root / "compiled" / "1.blob", (500, 500))
    removed = prune_cache(limit_mb=1.3)
    assert removed == 2
    assert not (root / "compiled" / "1.blob").exists() and not (root / "cmfnet-a").exists()
    assert (root / "cmfnet-b").exists() and (root / "cmfnet-c").exists()


def test_image_smaller_than_a_tile_matches_paddle(ov_cache, small_weights, photo_rgb):
    """A photo smaller than one tile (72 x 100): the model is compiled for its padded
    shape, so the output equals the Paddle path's even on the sensitive strong weights."""
    from cmfnet_core.engine import Restorer

    reference = Restorer("deblur", small_weights, tile=128, overlap=32, backend="paddle").restore(photo_rgb)
    restorer = Restorer("deblur", small_weights, tile=128, overlap=32, backend="openvino", precision="fp32")
    out = restorer.restore(photo_rgb)
    assert out.shape == photo_rgb.shape and out.dtype == photo_rgb.dtype
    assert np.abs(out.astype(int) - reference.astype(int)).max() <= 1


def test_damaged_cache_entry_is_exported_again(ov_cache, strong):
    from cmfnet_core.backends.openvino import OpenVINOBackend, forget_compiled

    first = OpenVINOBackend(strong, precision="fp32", tile_shape=(128, 128))
    batch = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    expected = first.run(batch)
    forget_compiled()
    first.model_path.write_text("<net broken")  # as if the disk lost the file's end
    again = OpenVINOBackend(strong, precision="fp32", tile_shape=(128, 128))
    assert not again.cache_hit
    np.testing.assert_allclose(again.run(batch), expected, atol=1e-6)


def test_bench_smoke(ov_cache, capsys):
    """`cmfnet bench` with the smallest matrix: the table, the recommendation, a JSON report."""
    import argparse
    import json

    from cmfnet_core import bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    report = ov_cache.parent / "bench.json"
    args = parser.parse_args(["--model", "small", "--tiles", "64", "--backends", "openvino,paddle",
                              "--paddle-tiles", "64", "--precisions", "fp32", "--rounds", "1",
                              "--no-preview", "--no-startup", "--no-peak", "--json", str(report)])
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    assert "MP/min" in out and "TFLOP/s" in out and "recommended default: --backend openvino" in out
    assert "tile 64: " in out and "px computed per photo px" in out  # the 12-MP photo's tile plan
    data = json.loads(report.read_text())
    assert {c["backend"] for c in data["cases"]} == {"openvino", "paddle"}
    assert all(c["error"] is None and len(c["times_ms"]) == 1 for c in data["cases"])


def test_bench_recommends_smaller_tile_within_ten_percent():
    from cmfnet_core.bench import Case, _recommend

    def case(tile, ms, threads=2, precision="bf16"):
        c = Case("openvino", precision, tile, threads)
        c.times = [ms / 1000]
        return c

    cases = [case(256, 1000), case(512, 3800), case(512, 8000, precision="fp32")]
    best = _recommend(cases, 12.0)
    assert (best.precision, best.tile) == ("bf16", 256)  # 256 within 10% of 512 (overlap counted)
    cases.append(case(256, 500, precision="fp32"))
    assert _recommend(cases, 12.0).precision == "fp32"  # whichever precision is faster here
    cases = [case(256, 1000, threads=1), case(256, 1050, threads=2)]
    assert _recommend(cases, 12.0).threads == 2  # all cores unless clearly slower
    cases = [case(256, 1000), case(256, 950, precision="int8")]
    assert _recommend(cases, 12.0).precision == "bf16"  # int8 only where clearly faster, as auto
    cases.append(case(256, 800, precision="int8"))
    assert _recommend(cases, 12.0).precision == "int8"


def test_a_bf16_request_on_a_cpu_without_it_gets_a_note_up_front(monkeypatch):
    from cmfnet_core.backends import check_options, precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert check_options(backend="openvino", precision="bf16") == ("openvino", [precision.NO_BF16_NOTE])
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert check_options(backend="openvino", precision="bf16") == ("openvino", [])


def test_bench_reports_the_precision_that_ran(ov_cache, plain):
    from cmfnet_core import bench

    case = bench.Case("openvino", "bf16", 64, 1)
    bench._prepare(case, plain)
    assert case.error is None and case.precision == EXPECTED_BF16_RUN


@pytest.fixture
def gpus(monkeypatch):
    """Say which GPUs this machine has: ``gpus(openvino=..., cuda=...)`` (ours have none)."""
    import cmfnet_core.backends as backends

    def have(openvino: bool, cuda: bool) -> None:
        monkeypatch.setattr(backends, "_openvino_gpu", lambda: openvino)
        monkeypatch.setattr(backends, "_paddle_has_cuda", lambda: cuda)
    return have


@pytest.mark.parametrize("openvino_gpu, cuda, runs", [(True, True, "openvino"), (True, False, "openvino"),
                                                      (False, True, "paddle")])
def test_device_gpu_picks_openvinos_gpu_first_then_paddles_cuda(gpus, openvino_gpu, cuda, runs):
    from cmfnet_core.backends import check_options

    gpus(openvino=openvino_gpu, cuda=cuda)
    assert check_options(device="gpu") == (runs, [])


def test_device_gpu_without_a_gpu_is_refused_naming_what_each_path_needs(gpus):
    from cmfnet_core.backends import check_options

    gpus(openvino=False, cuda=False)
    with pytest.raises(ValueError, match="found no GPU.*intel-opencl-icd.*paddlepaddle-gpu"):
        check_options(device="gpu")
    with pytest.raises(ValueError, match="OpenVINO sees no GPU"):
        check_options(backend="openvino", device="gpu")
    with pytest.raises(ValueError, match="paddle backend needs the paddlepaddle-gpu"):
        check_options(backend="paddle", device="gpu")
    gpus(openvino=True, cuda=False)
    with pytest.raises(ValueError, match="bf16 is for CPUs"):
        check_options(device="gpu", precision="bf16")


def test_an_openvino_gpu_model_is_compiled_for_the_gpu_in_fp16_without_cpu_settings(
        ov_cache, strong, monkeypatch):
    """What OpenVINO is asked for on a GPU; the model itself runs on the CPU here (no GPU)."""
    from cmfnet_core.backends import openvino
    from cmfnet_core.backends.core import core

    asked = []

    class GpulessCore:
        def compile_model(self, xml, device, properties):
            asked.append((device, dict(properties)))
            return core().compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    monkeypatch.setattr(openvino, "core", GpulessCore)
    openvino.forget_compiled()
    try:
        backend = openvino.OpenVINOBackend(strong, tile_shape=(64, 64), device="gpu")
        fp32 = openvino.OpenVINOBackend(strong, tile_shape=(64, 64), device="gpu", precision="fp32")
    finally:
        openvino.forget_compiled()
    (device, properties), (_, fp32_properties) = asked
    assert device == "GPU" and backend.requested_precision == "fp16"
    assert properties["INFERENCE_PRECISION_HINT"] == "f16" and fp32_properties["INFERENCE_PRECISION_HINT"] == "f32"
    assert "INFERENCE_NUM_THREADS" not in properties  # a CPU setting, which a GPU refuses
    assert backend.run(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 3, 64, 64)
    assert fp32.requested_precision == "fp32"
