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
