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


@pytest.fixture
def tiny_views(tmp_path):
    """A real-views file and a synthetic-views cache in the trainers' formats: ten sources of
    photos of every class, each class a colour the network can learn in a few steps."""
    from cmfnet_core.training import detector_whole

    rng = np.random.default_rng(0)
    classes = detect.DETECT_CLASSES
    clean_dir = tmp_path / "clean"
    clean_dir.mkdir()
    paths, truth, sources = [], [], []
    for s in range(10):
        for c, cls in enumerate(classes):
            for k in range(2):
                if cls == "none":  # clean photos are synthesis sources, as ../shared/data/clean's are
                    path = clean_dir / f"src{s}_{k}.png"
                    path.touch()
                else:
                    path = tmp_path / "real" / f"src{s}_{cls}_{k}.png"
                paths.append(str(path))
                truth.append(c)
                sources.append(f"src{s}")
    truth = np.array(truth)

    def pictures(labels, shape):
        base = np.where(labels[:, None] >= 0, 40 + 50 * np.maximum(labels, 0)[:, None], 128)
        noise = rng.integers(0, 20, (len(labels), *shape))
        return (base.reshape(-1, *[1] * len(shape)) + noise).astype(np.uint8)

    real = [i for i, p in enumerate(paths) if "/real/" in p]
    labels = np.concatenate([truth[real], [-1] * 8])
    real_views = tmp_path / "real-views.npz"
    np.savez(real_views, scenes=pictures(labels, (3, 160, 160)), crops=pictures(labels, (4, 3, 96, 96)),
             labels=labels, item_of=np.concatenate([real, [-1] * 8]),
             eval_scene=pictures(truth, (3, 160, 160)).astype(np.float16) / 255,
             eval_crops=pictures(truth, (4, 3, 96, 96)).astype(np.float16) / 255,
             eval_weight=np.ones(len(truth), np.float32), paths=np.array(paths), truth=truth,
             sources=np.array(sources))
    clean_photos = sorted(p for p in paths if "/clean/" in p)
    synth_labels = np.tile(np.arange(len(classes)), len(clean_photos))  # 4 views of each clean photo
    synth = tmp_path / "views.npz"
    np.savez(synth, key=json.dumps({"data": [str(clean_dir)], "variants": 4}),
             scenes=pictures(synth_labels, (3, 160, 160)), details=pictures(synth_labels, (4, 3, 96, 96)),
             labels=synth_labels)
    return detector_whole.Views(real_views, [synth]), real_views, synth


def test_whole_network_training_never_sees_the_photos_of_the_fold_it_is_scored_on(tiny_views):
    from cmfnet_core.training import detector_whole

    views = tiny_views[0]
    for scored in range(detector_folds.FOLDS):
        train_folds = [f for f in range(detector_folds.FOLDS) if f != scored]
        pool = detector_whole.training_pool(views, train_folds, real_repeat=2)
        synth_folds = views.fold_of_items(views.synth_item_of[pool[pool[:, 0] == 0, 1]])
        real_folds = views.fold_of_items(views.item_of[pool[pool[:, 0] == 1, 1]])
        assert scored not in synth_folds and scored not in real_folds
        assert set(synth_folds) == set(train_folds)  # the other folds' clean photos are the bulk
        real_of_training = np.isin(views.fold_of_items(views.item_of), train_folds)
        assert (real_folds >= 0).sum() == 2 * real_of_training.sum()  # each real view twice
        assert (real_folds < 0).sum() == 8  # every no-photo view once


def test_whole_network_final_scores_the_held_out_fold_and_writes_the_detector_the_tool_reads(tiny_views, tmp_path):
    pytest.importorskip("torch")
    from cmfnet_core.training import detector_whole

    _, real_views, synth = tiny_views
    out = tmp_path / "detector.pdparams"
    detector_whole.RECIPES["test"] = detector_whole.Recipe(from_shipped=False, epochs=10, lr=5e-3, real_repeat=2)
    try:
        assert detector_whole.main(["final", "--real-views", str(real_views), "--synth", str(synth),
                                    "--recipe", "test", "--threads", "1", "--out", str(out)]) == 0
    finally:
        del detector_whole.RECIPES["test"]
    heldout = json.loads(out.with_suffix(".json").read_text())["provenance"]["heldout"][0]
    assert heldout["degraded_right"] == 1.0 and heldout["clean_none"] == 1.0, heldout["misses"]
    shipped = detect.read_detector_state(detect.DETECTOR_WEIGHTS)
    assert not np.array_equal(detect.read_detector_state(out)["scene.0.weight"], shipped["scene.0.weight"])
    detect.Detector(out, backend="paddle")  # the tool reads it


def test_even_haze_washes_out_the_near_as_much_as_the_far():
    """Smog over a city hazes the nearest buildings too: unlike synth.haze, graded by depth,
    the bottom of the picture loses as visible a share of its contrast as the top."""
    from cmfnet_core.training import detector as trainer

    rng = np.random.default_rng(1)
    texture = rng.random((60, 90, 3)).astype(np.float32)
    img = np.kron(texture, np.ones((4, 4, 1), np.float32))  # a photo-like blocky pattern, 240 x 360
    for _ in range(20):
        out = trainer.visible_even_haze(img, rng)
        thirds = np.array_split(np.arange(img.shape[0]), 3)
        kept = [out[rows].std() / img[rows].std() for rows in thirds]
        assert max(kept) < trainer.HAZE_MAX_CONTRAST, kept
        assert kept[0] <= kept[-1] + 1e-6  # the top (far, sky) no clearer than the bottom
        assert out.mean() > img.mean()  # towards the airlight, which is bright
