"""Weights files: every supported format loads; every bad file gets one clear error."""
from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from cmfnet_core.weights import (WeightsError, default_weights, import_weights, infer_config,
                                 installed_weights, read_weights, save_weights)


@pytest.fixture(scope="module")
def official(small_weights):
    return read_weights(small_weights)


def test_config_is_read_from_tensor_shapes(official):
    assert (official.config.n_feat, official.config.scale_unetfeats, official.config.reduction) == (16, 8, 4)
    assert infer_config(official.state) == official.config


def test_zip_legacy_and_unprefixed_checkpoints_hold_the_same_tensors(conformance_dir, official):
    for name in ("small_official_legacy.pth", "small_nomodule.pth"):
        other = read_weights(conformance_dir / name)
        assert other.state.keys() == official.state.keys()
        assert all(np.array_equal(other.state[k], official.state[k]) for k in official.state)


def test_paddle_pdparams_from_paddle_save_loads(tmp_path, official):
    import paddle

    from cmfnet_core.weights import build_network

    path = tmp_path / "article.pdparams"
    paddle.save(build_network(official).state_dict(), str(path))  # the article's format
    loaded = read_weights(path)
    assert all(np.array_equal(loaded.state[k], official.state[k]) for k in official.state)


def test_project_format_round_trip_with_sidecar(tmp_path, official):
    path = save_weights(official, tmp_path / "mine.pdparams", task="dehaze", provenance={"kind": "trained"})
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["task"] == "dehaze" and meta["config"]["n_feat"] == 16 and len(meta["sha256"]) == 64
    assert read_weights(path).task == "dehaze"


def test_sidecar_hash_mismatch_is_reported(tmp_path, official):
    path = save_weights(official, tmp_path / "mine.pdparams", task="dehaze", provenance={})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit inside a tensor
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        read_weights(path)


def test_truncated_checkpoint_gives_one_clear_line(tmp_path, small_weights):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(small_weights.read_bytes()[:300_000])
    with pytest.raises(WeightsError) as error:
        read_weights(broken)
    assert "broken.pth" in str(error.value) and "\n" not in str(error.value)


def test_truncated_legacy_checkpoint(tmp_path, conformance_dir):
    broken = tmp_path / "legacy.pth"
    broken.write_bytes((conformance_dir / "small_official_legacy.pth").read_bytes()[:-5000])
    with pytest.raises(WeightsError, match="truncated"):
        read_weights(broken)


def test_empty_and_text_files(tmp_path):
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(WeightsError, match="empty"):
        read_weights(empty)
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights")
    with pytest.raises(WeightsError, match="not a pickle"):
        read_weights(text)


def _pickle_file(path, obj):
    path.write_bytes(pickle.dumps(obj, protocol=4))
    return path


def test_foreign_network_is_named(tmp_path):
    nafnet = {"intro.weight": np.zeros((32, 3, 3, 3), np.float32),
              "ending.weight": np.zeros((3, 32, 3, 3), np.float32),
              "encoders.0.0.conv1.weight": np.zeros((64, 32, 1, 1), np.float32)}
    with pytest.raises(WeightsError, match="NAFNet"):
        read_weights(_pickle_file(tmp_path / "nafnet.pdparams", nafnet))


def test_missing_keys_are_counted_and_named(tmp_path, official):
    state = dict(official.state)
    del state["tail.weight"], state["mix.w"]
    with pytest.raises(WeightsError, match=r"missing 2 keys, first: mix\.w"):
        read_weights(_pickle_file(tmp_path / "partial.pdparams", state))


def test_wrong_shape_is_named(tmp_path, official):
    state = dict(official.state)
    state["sam2o.conv3.weight"] = np.zeros((16, 3, 5, 5), np.float32)
    with pytest.raises(WeightsError, match=r"sam2o\.conv3\.weight is \(16, 3, 5, 5\)"):
        read_weights(_pickle_file(tmp_path / "shape.pdparams", state))


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = _pickle_file(tmp_path / "evil.pth", {"state_dict": {"x": _Exploit(marker)}})
    with pytest.raises(WeightsError, match="refused"):
        read_weights(evil)
    assert not marker.exists()


def test_exploit_inside_a_torch_zip_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_zip.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("evil_zip/data.pkl", pickle.dumps({"state_dict": _Exploit(marker)}, protocol=2))
    with pytest.raises(WeightsError, match="refused"):
        read_weights(path)
    assert not marker.exists()


# A protocol-0 pickle whose string holds a backslash escape Python does not know ("\q"):
# decoding it warns "invalid escape sequence", both where the file is walked and where it is read.
ODD_ESCAPE_PICKLE = b"\x80\x02(dp0\nS'note'\np1\nS'a\\q'\np2\ns."


def test_an_odd_escape_in_an_old_pickle_is_read_without_a_warning(tmp_path):
    """Even with every warning shown (-W always), as a fresh process reads it."""
    import subprocess
    import sys

    path = tmp_path / "old.pdparams"
    path.write_bytes(ODD_ESCAPE_PICKLE)
    code = "import sys\nfrom cmfnet_core.checkpoint import load_pickled\nprint(load_pickled(sys.argv[1]))\n"
    result = subprocess.run([sys.executable, "-W", "always", "-c", code, str(path)],
                            capture_output=True, text=True)
    assert (result.returncode, result.stdout, result.stderr) == (0, "{'note': 'a\\\\q'}\n", "")


def test_reading_weights_switches_no_warning_filter(tmp_path, monkeypatch, small_weights):
    """The app reads weights on one thread while another reads photos: a read must not
    set (and put back) the process-wide warning filters, which the other thread would see."""
    import warnings

    from cmfnet_core.checkpoint import load_pickled, quiet_escape_warnings

    quiet_escape_warnings()  # again: pytest put back the filters it had before collecting
    old = tmp_path / "old.pdparams"
    old.write_bytes(ODD_ESCAPE_PICKLE)
    switched = []
    for name in ("catch_warnings", "simplefilter", "filterwarnings", "resetwarnings"):
        def call(*args, _name=name, _original=getattr(warnings, name), **kwargs):
            switched.append(_name)
            return _original(*args, **kwargs)
        monkeypatch.setattr(warnings, name, call)
    filters = warnings.filters
    assert load_pickled(old) == {"note": "a\\q"}
    read_weights(small_weights)
    assert warnings.filters is filters
    monkeypatch.undo()
    assert switched == []


def test_import_makes_official_weights_the_default(tmp_path, small_weights):
    assert all(e.kind != "official" for e in installed_weights("deraindrop"))
    stored = import_weights("deraindrop", small_weights)
    assert stored.suffix == ".pdparams" and stored.with_suffix(".json").exists()
    assert default_weights("deraindrop").path == stored
    assert default_weights("deraindrop").kind == "official"
    assert read_weights(stored).task == "deraindrop"


def test_import_refuses_unknown_task(small_weights):
    with pytest.raises(WeightsError, match="unknown task"):
        import_weights("denoise", small_weights)
