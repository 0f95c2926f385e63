"""``cmfnet bench``'s fresh-process measurements, each run for real on a tiny input.

The table itself (OpenVINO against Paddle) is checked in test_openvino_backend.py.
"""
from __future__ import annotations

import pytest

from cmfnet_core import bench, bench_child


def test_the_photo_child_restores_a_photo_in_a_fresh_process(small_weights):
    result = bench._child("photo", dict(weights=str(small_weights), tile=64, backend="paddle",
                                        precision="fp32", threads=1, shape=[40, 56]))
    assert 0 < result["restore_s"] <= result["total_s"] < result["process_wall_s"]
    assert result["peak_rss_mb"] > 0


def test_the_preview_child_times_a_cold_and_a_warm_preview(small_weights):
    result = bench._child("preview", dict(weights=str(small_weights), tile=64, backend="paddle",
                                          precision="fp32", threads=1, shape=[48, 64], warm_runs=2))
    assert len(result["warm_all_s"]) == 2 and result["warm_s"] > 0
    assert 0 < result["import_s"] < result["cold_s"] < result["process_wall_s"]
    assert result["paddle_imported"] is True


def test_a_failing_child_is_one_line_naming_its_error(tmp_path):
    with pytest.raises(RuntimeError, match="child process failed: .*"):
        bench._child("photo", dict(weights=str(tmp_path / "missing.pth"), tile=64, backend="paddle",
                                   precision="fp32", threads=1, shape=[8, 8]))


def test_the_child_program_refuses_an_unknown_measurement(capsys):
    assert bench_child.main(["nonsense", "{}"]) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_imports_none_of_the_heavy_frameworks():
    assert bench.heavy_imports_of_help() == []


def test_the_peak_child_measures_each_precision_in_a_fresh_process():
    """One wide convolution per precision through OpenVINO (tiny here); int8 runs int8 on
    every x86 CPU OpenVINO supports, with VNNI/AMX or without."""
    pytest.importorskip("openvino")
    result = bench.measure_peak(threads=1, precisions=["fp32", "int8"], seconds=0.05, channels=16, size=16)
    assert result["gflop_per_run"] == pytest.approx(2 * 16 * 16 * 9 * 16 * 16 / 1e9)
    assert {name: p["ran"] for name, p in result["precisions"].items()} == {"fp32": "fp32", "int8": "int8"}
    assert all(p["gflops"] > 0 and p["runs"] >= 3 for p in result["precisions"].values())


def test_a_tile_plan_counts_the_pixels_it_computes_per_photo_pixel():
    from cmfnet_core.tiling import plan_tiles

    plan = bench.tile_plan_overhead(12.0, 512)
    height, width = bench._photo_shape(12.0)
    assert abs(height * width / 12e6 - 1) < 1e-3 and abs(width / height - 4 / 3) < 1e-3  # a 4:3 12-MP photo
    _, tiles = plan_tiles(height, width, 512, bench.OVERLAP)
    assert plan["tiles"] == len(tiles) and plan["tile_shape"] == (tiles[0].h, tiles[0].w)
    assert plan["pixels_per_photo_pixel"] == pytest.approx(sum(t.h * t.w for t in tiles) / (height * width))
    assert 1.0 < plan["pixels_per_photo_pixel"] < bench.tile_plan_overhead(12.0, 256)["pixels_per_photo_pixel"]


def test_the_table_gives_each_case_its_share_of_the_peak_at_its_precision():
    case = bench.Case("openvino", "bf16", 80, 2)
    case.times = [0.32]  # 6,400 px in 0.32 s at 1 MFLOP/px: 20 GFLOP/s
    line = bench._table([case], flops_per_pixel=1e6, megapixels=1.0, peak={"bf16": 80.0, "fp32": 20.0})[-1]
    assert " 25% " in line
    assert " - " in bench._table([case], flops_per_pixel=1e6, megapixels=1.0, peak={"fp32": 20.0})[-1]


def test_the_photo_estimate_is_the_tile_plans_tiles_with_the_context_times_a_tiles_time():
    case = bench.Case("openvino", "fp32", 256, 2)
    case.times = [0.5]
    tiles = bench.tile_plan_overhead(12.0, 256, context=48)["tiles"]
    assert tiles > bench.tile_plan_overhead(12.0, 256)["tiles"]  # the context costs tiles
    line = bench._table([case], flops_per_pixel=1e6, megapixels=12.0, context=48)[-1]
    assert f" {tiles * 0.5:.0f}s " in line
