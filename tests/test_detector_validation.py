"""The detector's honest validation: real photos in folds by source, calibration, ECE."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cmfnet_core import detect
from cmfnet_core.training import detector_cv, detector_folds
from tests.conftest import SHARED

DATA = SHARED / "data"
needs_data = pytest.mark.data  # ../shared/data/real (conftest skips it, naming the marker, where absent)


@needs_data
def test_every_real_photo_is_labelled_by_its_folder_and_named_source():
    items = detector_folds.labelled_photos(DATA)
    by_name = {p.name: (c, s) for p, c, s in items}
    assert by_name["ohaze_03_outdoor_hazy.png"] == ("dehaze", "real-ohaze")
    assert by_name["daclip_3_rain.png"] == ("deraindrop", "real-daclip-rain")
    assert by_name["daclip_GOPR0871_11_00_000078.png"] == ("deblur", "gopro-GOPR0871")
    assert by_name["kodim01.png"] == ("none", "kodak")
    # a GoPro sequence's blurred frames and their sharp targets are one source
    sources = {(p.parent.name, s) for p, _, s in items if p.name.startswith("GOPR0477")}
    assert sources == {("input", "gopro-GOPR0477"), ("gt", "gopro-GOPR0477")}
    assert len(items) == len({p for p, _, _ in items})  # no photo twice


@needs_data
def test_folds_keep_each_source_whole_and_every_fold_has_every_class():
    items = detector_folds.labelled_photos(DATA)
    fold_of = detector_folds.assign_folds(items)
    assert fold_of == detector_folds.assign_folds(list(reversed(items)))  # a fixed rule, not an order
    for f in range(detector_folds.FOLDS):
        classes = {c for _, c, s in items if fold_of[s] == f}
        assert classes == set(detect.DETECT_CLASSES), (f, classes)
    # a source is one key, so it lies in one fold: what it holds is never split
    assert set(fold_of) == {s for _, _, s in items}


def test_temperature_scaling_makes_overconfident_scores_honest():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 4, 4000)
    # a scorer right 60 % of the time that says 95 %: logits far too large
    called = np.where(rng.random(4000) < 0.6, truth, (truth + rng.integers(1, 4, 4000)) % 4)
    logits = np.full((4000, 4), 0.0)
    logits[np.arange(4000), called] = np.log(0.95 / (0.05 / 3))
    before, _ = detector_cv.expected_calibration_error(truth, detector_cv.softmax(logits))
    t = detector_cv.fit_temperature(logits, truth)
    after, table = detector_cv.expected_calibration_error(truth, detector_cv.softmax(logits, t))
    assert before > 0.3 and after < 0.03 and t > 1.5
    assert sum(n for _, _, n in table) == 4000


def test_final_trains_a_head_on_the_cv_folds_and_writes_a_detector_the_tool_reads(tmp_path):
    """On features where each class has its own direction, the recipe learns them, the
    held-out fold is scored, and the file written has the shipped encoders and a new head."""
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    classes = detect.DETECT_CLASSES
    paths, truth, sources = [], [], []
    for s in range(10):  # ten sources, each with every class: whole sources go to the folds
        for c in range(len(classes)):
            for k in range(20):
                paths.append(f"/photos/src{s}/{classes[c]}_{k}.png")
                truth.append(c)
                sources.append(f"src{s}")
    truth = np.array(truth)

    def rows(labels):
        x = rng.normal(0, 0.3, (len(labels), 384)).astype(np.float32)
        x[np.arange(len(labels)), np.maximum(labels, 0) * 10] += np.where(labels >= 0, 8.0, 0.0)
        return x
    view_labels = np.concatenate([truth, np.full(20, detector_cv.UNSURE_LABEL)])
    shipped = detect.read_detector_state(detect.DETECTOR_WEIGHTS)
    features = tmp_path / "features.npz"
    np.savez(features, feats=rows(view_labels), labels=view_labels,
             source=np.array([detector_cv.SOURCE_SYNTH] * len(truth) + [detector_cv.SOURCE_NOISE] * 20),
             item_of=np.concatenate([np.arange(len(truth)), np.full(20, -1)]), eval_feats=rows(truth),
             paths=np.array(paths), truth=truth, sources=np.array(sources),
             head=json.dumps({k: v.tolist() for k, v in shipped.items() if k.startswith("head.")}))
    out = tmp_path / "detector.pdparams"
    assert detector_cv.main(["final", "--features", str(features), "--recipe", "synth", "--seeds", "1",
                             "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())["provenance"]
    assert meta["heldout"]["degraded_right"] > 0.9 and meta["heldout"]["clean_none"] > 0.9
    assert 0.05 < meta["temperature"] < 20
    state = detect.read_detector_state(out)
    assert np.array_equal(state["scene.0.weight"], shipped["scene.0.weight"])  # the encoders kept
    assert not np.array_equal(state["head.2.weight"], shipped["head.2.weight"])
    detect.Detector(out, backend="paddle")  # the tool reads it
