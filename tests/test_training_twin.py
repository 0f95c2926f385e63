"""The PyTorch training twin is the official architecture: it loads the
official small checkpoint and reproduces the stored official outputs."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

INPUTS = ["rand_1x3x64x96", "deblur1_crop_1x3x128x128"]
CHECKPOINTS = ["small_official.pth", "small_nomodule.pth"]


@pytest.fixture(scope="module")
def twin_models(conformance_dir):
    from cmfnet_core.training.twin import CMFNet, config_from_state_dict, strip_module

    models = {}
    for name in CHECKPOINTS:
        sd = strip_module(torch.load(conformance_dir / name, map_location="cpu")["state_dict"])
        assert config_from_state_dict(sd) == dict(n_feat=16, scale_unetfeats=8, reduction=4)
        m = CMFNet(n_feat=16, scale_unetfeats=8, reduction=4).eval()
        m.load_state_dict(sd, strict=True)
        models[name] = m
    return models


def test_state_dict_keys_are_official(conformance_dir):
    from cmfnet_core.training.twin import CMFNet

    keys = [k[len("module."):] for k in (conformance_dir / "small_state_dict_keys.txt").read_text().split("\n") if k]
    m = CMFNet(n_feat=16, scale_unetfeats=8, reduction=4)
    assert list(m.state_dict()) == keys
    # one shared PReLU: 45 aliases of the same parameter, 186 unique tensors
    assert len(list(m.parameters())) == 186
    assert m.shallow_feat1[1] is m.stage3_decoder.skip_attn2.body[1]


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
@pytest.mark.parametrize("case", INPUTS)
def test_twin_matches_official(twin_models, conformance_dir, checkpoint, case):
    x = torch.from_numpy(np.load(conformance_dir / f"input_{case}.npy"))
    expected = np.load(conformance_dir / f"small_out0_{case}.npy")
    with torch.no_grad():
        outs = twin_models[checkpoint](x)
    assert len(outs) == 7
    out = outs[0].numpy()
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() <= 1e-4
