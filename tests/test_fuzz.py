"""Fuzzing the two parsers that read untrusted files: photos and weights.

Property: whatever the bytes, ``read_image`` returns a valid Photo or raises
ImageError, and ``read_weights`` returns checked Weights or raises
WeightsError -- never any other exception, and reading a weights file never
runs code (watched with an audit hook).

The default run is bounded (``CMFNET_FUZZ_EXAMPLES``, 200 per property);
run longer on demand, e.g.::

    CMFNET_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz.py -q
"""
from __future__ import annotations

import atexit
import io
import os
import pickle
import shutil
import struct
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmfnet_core.imageio import ImageError, Photo, read_image
from cmfnet_core.weights import Weights, WeightsError, read_weights
from tests import corpus
from tests.conftest import CONFORMANCE

EXAMPLES = int(os.environ.get("CMFNET_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
# decoded images stay small, so a mutated header cannot make the fuzzer allocate gigabytes
PIXEL_LIMIT = 4_000_000
WORKDIR = Path(tempfile.mkdtemp(prefix="cmfnet-fuzz-"))
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)


def _image_seeds() -> dict[str, bytes]:
    import cv2

    picture = corpus.gradient(24, 32)
    deep = (corpus.gradient(12, 16).astype(np.uint16) * 257)[..., ::-1]
    seeds = {
        "png": corpus.encoded("PNG", picture),
        "png_rgba": corpus.encoded("PNG", corpus.gradient(12, 16, channels=4)),
        "jpeg": corpus.encoded("JPEG", picture, quality=90),
        "jpeg_progressive": corpus.encoded("JPEG", picture, progressive=True),
        "tiff": corpus.encoded("TIFF", picture),
        "tiff_lzw": corpus.encoded("TIFF", picture, compression="tiff_lzw"),
        "webp": corpus.encoded("WEBP", picture, quality=80),
        "gif": corpus.encoded("GIF", picture),
        "bmp": corpus.encoded("BMP", picture),
        "png16": cv2.imencode(".png", deep)[1].tobytes(),
        "tiff16": cv2.imencode(".tiff", deep)[1].tobytes(),
    }
    folder = Path(tempfile.mkdtemp(dir=WORKDIR))
    for name in ("cmyk_jpeg", "animated_gif", "animated_webp", "gray16_alpha_png", "broken_exif_jpeg"):
        seeds[name] = corpus.ODD_IMAGES[name](folder).read_bytes()
    return seeds


IMAGE_SEEDS = _image_seeds()


@st.composite
def mutated(draw, seeds: dict[str, bytes], hot: int = 4096):
    """A seed with a few bytes replaced, inserted or deleted, and maybe cut short.

    Mutations land mostly in the first ``hot`` bytes (headers, tables, the pickle of
    a checkpoint) and sometimes anywhere."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(0, 8))):
        limit = min(len(data), hot) if draw(st.booleans()) else len(data)
        if limit == 0:
            break
        at = draw(st.integers(0, limit - 1))
        action = draw(st.sampled_from(["replace", "insert", "delete", "interesting"]))
        if action == "replace":
            data[at] = draw(st.integers(0, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        else:  # values that break length and size fields
            data[at:at + 4] = draw(st.sampled_from([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff",
                                                    b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00",
                                                    b"\x00\x00\x01\x00"]))
    if draw(st.integers(0, 4)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return name, bytes(data)


def _file(data: bytes, suffix: str) -> Path:
    fd, name = tempfile.mkstemp(dir=WORKDIR, suffix=suffix)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return Path(name)


def _check_image(data: bytes, suffix: str = ".jpg") -> None:
    path = _file(data, suffix)
    try:
        photo = read_image(path, limit=PIXEL_LIMIT)
    except ImageError as error:
        message = str(error)
        assert str(path) in message and "\n" not in message
        return
    finally:
        path.unlink()
    assert isinstance(photo, Photo)
    pixels = photo.pixels
    assert pixels.dtype in (np.uint8, np.uint16)
    assert pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (2, 3, 4))
    assert min(pixels.shape[:2]) >= 1 and pixels.shape[0] * pixels.shape[1] <= PIXEL_LIMIT
    assert pixels.flags.c_contiguous


@FUZZ
@given(mutated(IMAGE_SEEDS))
def test_image_loader_on_mutated_files(case):
    _check_image(case[1])


@FUZZ
@given(st.binary(max_size=2048), st.sampled_from([".jpg", ".png", ".tif", ".webp", ".gif"]))
def test_image_loader_on_random_bytes(data, suffix):
    _check_image(data, suffix)


@FUZZ
@given(st.sampled_from(sorted(IMAGE_SEEDS)), st.sampled_from([b"", b"\x00", b"\xff" * 64]))
def test_image_loader_on_every_cut_of_a_header(name, tail):
    """Cut inside the header, where decoders meet half a size field."""
    data = IMAGE_SEEDS[name]
    for cut in range(0, min(len(data), 96), 3):
        _check_image(data[:cut] + tail)


# --- weights ------------------------------------------------------------------------

DANGEROUS_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "subprocess.Popen",
                    "socket.", "ctypes.", "os.remove", "os.rename", "shutil.",
                    "pickle.find_class")  # the unrestricted lookup: the allow-list was bypassed


class _AuditWatch:
    """Records dangerous audit events while ``active`` (an audit hook cannot be removed).

    Code compiled from a string (``exec``/``eval``/``compile``) counts; a standard module
    imported on first use (a codec, say) executes code from its file and does not."""

    def __init__(self):
        self.active = False
        self.seen: list[str] = []
        sys.addaudithook(self)

    def __call__(self, event: str, args) -> None:
        if not self.active:
            return
        if event.startswith(DANGEROUS_EVENTS):
            self.seen.append(event)
        elif event == "exec" and getattr(args[0], "co_filename", "<").startswith("<"):
            self.seen.append(f"exec of {args[0].co_filename}")
        elif event == "compile" and str(args[1]).startswith("<"):
            self.seen.append(f"compile of {args[1]}")


_WATCH = _AuditWatch()


def _weights_seeds() -> dict[str, bytes]:
    seeds = {}
    if (CONFORMANCE / "small_official.pth").exists():
        official = (CONFORMANCE / "small_official.pth").read_bytes()
        seeds["torch_zip"] = official
        seeds["torch_zip_pickle"] = _zip_pickle_only(official)
        seeds["torch_legacy"] = (CONFORMANCE / "small_official_legacy.pth").read_bytes()
        state = read_weights(CONFORMANCE / "small_official.pth").state
        shape_keys = ("shallow_feat1.2.weight", "stage1_encoder.down12.down.1.weight",  # what
                      "stage1_encoder.encoder_level1.0.CA.conv_du.0.weight", "mix.w")  # infer_config reads
        seeds["pickle_state"] = pickle.dumps({k: state[k] for k in shape_keys}, protocol=2)
    arrays = {"shallow_feat1.2.weight": np.ones((8, 3, 3, 3), np.float32),
              "mix.w": np.array([0.3], np.float32), "names": {"a": "b"}}
    seeds["pickle"] = pickle.dumps({"state_dict": arrays}, protocol=4)
    seeds["pickle_v2"] = pickle.dumps(arrays, protocol=2)
    return seeds


def _zip_pickle_only(official: bytes) -> bytes:
    """The official archive with its tensors cut to a few bytes: the structure fuzzes faster."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(official)) as source, zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item.filename, data if item.filename.endswith(".pkl") else data[:16])
    return out.getvalue()


WEIGHTS_SEEDS = _weights_seeds()


def _check_weights(data: bytes) -> None:
    path = _file(data, ".pth")
    _WATCH.active, _WATCH.seen = True, []
    try:
        weights = read_weights(path)
    except WeightsError as error:
        assert "\n" not in str(error)
        weights = None
    finally:
        _WATCH.active = False
        path.unlink()
    assert _WATCH.seen == [], f"reading a weights file raised audit events {_WATCH.seen}"
    if weights is not None:
        assert isinstance(weights, Weights) and weights.state
        assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in weights.state.values())


@FUZZ
@given(mutated(WEIGHTS_SEEDS, hot=20_000))
def test_weights_reader_on_mutated_files(case):
    _check_weights(case[1])


@FUZZ
@given(st.binary(max_size=1024))
def test_weights_reader_on_random_bytes(data):
    _check_weights(b"\x80" + data)  # past the "is it a pickle" check


_GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("builtins", "exec"),
            ("builtins", "__import__"), ("subprocess", "Popen"), ("subprocess", "check_output"),
            ("shutil", "rmtree"), ("builtins", "getattr"), ("torch", "load"),
            ("numpy", "load"), ("numpy.testing._private.utils", "runstring"),
            ("torch.nn.modules.conv", "Conv2d"), ("collections", "OrderedDict")]


def _calling_pickle(module: str, name: str, argument: str, stack_global: bool, wrapped: bool) -> bytes:
    """A hand-assembled pickle that calls ``module.name(argument)``, optionally as the
    ``state_dict`` entry of a dict (GLOBAL opcode for protocol 2, STACK_GLOBAL for 4)."""
    def text(value: str) -> bytes:
        raw = value.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw  # BINUNICODE

    callee = text(module) + text(name) + b"\x93" if stack_global else f"c{module}\n{name}\n".encode()
    call = callee + text(argument) + b"\x85R"  # TUPLE1, REDUCE
    body = b"}" + text("state_dict") + call + b"s" if wrapped else call  # EMPTY_DICT ... SETITEM
    return b"\x80" + (b"\x04" if stack_global else b"\x02") + body + b"."


@FUZZ
@given(st.sampled_from(_GLOBALS), st.booleans(), st.booleans())
def test_a_pickle_naming_any_callable_runs_nothing(target, stack_global, wrapped):
    """Refused (or harmless, for the allow-listed names), and the command never runs."""
    marker = WORKDIR / "pwned"
    _check_weights(_calling_pickle(*target, f"touch {marker}", stack_global, wrapped))
    assert not marker.exists()


def test_the_hand_made_pickle_really_runs_code_when_unpickled_unsafely(tmp_path):
    """The attack above is real: plain ``pickle.loads`` of it calls the function."""
    marker = tmp_path / "ran"
    _WATCH.active, _WATCH.seen = True, []
    try:
        pickle.loads(_calling_pickle("os", "system", f"touch {marker}", True, True))
    finally:
        _WATCH.active = False
    assert marker.exists() and "os.system" in _WATCH.seen  # and the audit watch sees it
