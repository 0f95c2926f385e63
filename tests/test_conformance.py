"""The Paddle port reproduces the official PyTorch CMFNet on its own checkpoints."""
from __future__ import annotations

import numpy as np
import pytest

INPUTS = ["rand_1x3x64x96", "deblur1_crop_1x3x128x128"]
CHECKPOINTS = ["small_official.pth", "small_official_legacy.pth", "small_nomodule.pth"]
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def networks(conformance_dir):
    from cmfnet_core import load_network

    return {name: load_network(conformance_dir / name) for name in CHECKPOINTS}


@pytest.mark.parametrize("checkpoint", CHECKPOINTS)
@pytest.mark.parametrize("case", INPUTS)
def test_output_matches_official(networks, conformance_dir, checkpoint, case):
    import paddle

    x = np.load(conformance_dir / f"input_{case}.npy")
    expected = np.load(conformance_dir / f"small_out0_{case}.npy")
    with paddle.no_grad():
        out = networks[checkpoint](paddle.to_tensor(x)).numpy()
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() <= TOLERANCE


def test_every_intermediate_matches(networks, conformance_dir):
    import paddle

    x = np.load(conformance_dir / "input_rand_1x3x64x96.npy")
    reference = np.load(conformance_dir / "small_alloutputs_rand_1x3x64x96.npz")
    with paddle.no_grad():
        outs = networks["small_official.pth"].forward_all(paddle.to_tensor(x))
    for i, out in enumerate(outs):
        assert np.abs(out.numpy().reshape(reference[f"out{i}"].shape) - reference[f"out{i}"]).max() <= TOLERANCE


def test_network_is_in_eval_mode_with_one_shared_prelu(networks):
    from cmfnet_core.network import PReLU

    network = networks["small_official.pth"]
    assert not network.training
    prelus = {id(layer) for layer in network.sublayers() if isinstance(layer, PReLU)}
    assert len(prelus) == 1
    assert len(network.state_dict()) == 230 and len(network.parameters()) == 186


def test_state_dict_keys_equal_the_official_ones(networks, conformance_dir):
    official = [line.strip().removeprefix("module.")
                for line in (conformance_dir / "small_state_dict_keys.txt").read_text().splitlines()]
    assert set(networks["small_official.pth"].state_dict()) == set(official)


def test_full_size_config_matches_the_spec():
    from cmfnet_core.network_config import Config, expected_shapes

    shapes = expected_shapes(Config())
    unique = sum(int(np.prod(s)) for k, s in shapes.items()
                 if not (k.endswith(".1.weight") and s == (1,)) or k == "shallow_feat1.1.weight")
    assert len(shapes) == 230
    assert unique == 17_241_279
    assert Config().flops_per_pixel() == pytest.approx(10.3e6, rel=0.01)
