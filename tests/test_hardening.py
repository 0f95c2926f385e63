"""Bad input never crashes the tool and never costs the user a photo.

The corpus (``tests/corpus.py``) is generated here, nothing is downloaded. For
every entry the command line must give one clear line naming the file and the
reason, exit non-zero while still doing the other files of the run, leave the
original byte-identical and leave no partial or temporary file
(``.NAME.*.part``) behind. The engine, the app and the right-click runner are
checked where the case applies to them.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cmfnet_core.imageio import ImageError, read_image, write_image
from cmfnet_core.weights import WeightsError, read_weights
from tests import corpus
from tests.conftest import ROOT
from tests.test_cli import FAST

TASK = "deblur"
ODD_NAMES = ["with spaces.png", "ünïcödé 写真.png", "-leading-dash.png"]


def run_cli(*args, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cmfnet_core.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=env or os.environ, **kwargs)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` (not following links) with its content hash."""
    return {p.name: digest(p) if p.is_file() and not p.is_symlink() else "(not a file)"
            for p in folder.iterdir()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.part"))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("cmfnet: error:")]


def save_png(path: Path, pixels: np.ndarray) -> Path:
    Image.fromarray(pixels).save(path)
    return path


# ==================================================================== the corpus, through the CLI

class CorpusRun:
    """One ``cmfnet restore`` over the whole corpus: bad files, odd files, odd names and a
    taken output name, mixed with good photos. The tests below each check one case."""

    def __init__(self, folder: Path, weights: Path, photo: np.ndarray):
        self.folder = folder
        self.bad = {name: make(folder) for name, (make, _reason) in corpus.BAD_IMAGES.items()}
        self.odd = {name: make(folder) for name, make in corpus.ODD_IMAGES.items()}
        self.named = {name: save_png(folder / name, photo) for name in ODD_NAMES}
        self.taken = save_png(folder / "taken.png", photo[:16, :16])
        (folder / "taken.deblur.png").write_bytes(b"an earlier result")
        (folder / "taken.deblur-2.png").symlink_to(folder / "nowhere")  # a dangling link
        (folder / "taken.deblur-3.png").mkdir()
        self.inputs = [*self.bad.values(), *self.odd.values(), *self.named.values(), self.taken]
        self.before = snapshot(folder)
        self.result = run_cli("restore", "--task", TASK, "--weights", weights, "-q", *FAST, "--",
                              *self.inputs)
        self.written = [Path(line) for line in self.result.stdout.splitlines()]

    def lines_about(self, path: Path) -> list[str]:
        return [line for line in self.result.stderr.splitlines() if str(path) in line]


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_weights, photo_rgb) -> CorpusRun:
    return CorpusRun(tmp_path_factory.mktemp("corpus"), small_weights, photo_rgb)


def test_the_run_says_some_files_failed_and_still_did_the_others(run):
    assert run.result.returncode == 1
    assert "Traceback" not in run.result.stderr
    assert len(error_lines(run.result.stderr)) == len(run.bad)
    good = len(run.odd) + len(run.named) + 1
    assert len(run.written) == good and all(path.is_file() for path in run.written)


@pytest.mark.parametrize("case", sorted(corpus.BAD_IMAGES))
def test_a_bad_file_gets_one_line_naming_it_and_the_reason(run, case):
    path = run.bad[case]
    (line,) = run.lines_about(path)
    prefix = f"cmfnet: error: {path}: "
    assert line.startswith(prefix)
    assert re.search(corpus.BAD_IMAGES[case][1], line[len(prefix):]), line
    assert not path.with_name(f"{path.stem}.{TASK}{path.suffix}").exists()


def test_originals_are_byte_identical_and_nothing_temporary_is_left(run):
    after = snapshot(run.folder)
    assert {name: after[name] for name in run.before} == run.before
    assert leftovers(run.folder) == []
    assert set(after) - set(run.before) == {p.name for p in run.written}


@pytest.mark.parametrize("case", sorted(corpus.ODD_IMAGES))
def test_an_unusual_photo_is_restored_in_its_own_layout(run, case):
    source = read_image(run.odd[case])
    (output,) = [p for p in run.written if p.name.startswith(run.odd[case].stem + ".")]
    restored = read_image(output)
    assert restored.pixels.shape == source.pixels.shape
    assert restored.pixels.dtype == source.pixels.dtype
    if source.pixels.ndim == 3 and source.pixels.shape[2] in (2, 4):
        assert np.array_equal(restored.pixels[..., -1], source.pixels[..., -1])  # alpha untouched


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_reset_in_the_output(run, orientation):
    path = run.odd[f"orientation_{orientation}"]
    output = path.with_name(f"{path.stem}.{TASK}.jpg")
    upright = (10, 6) if orientation >= 5 else (6, 10)  # 5-8 are stored turned a quarter
    assert read_image(output).pixels.shape[:2] == upright
    with Image.open(output) as written:
        assert written.getexif().get(0x0112, 1) == 1


def test_animated_images_give_the_first_frame_with_a_note(run):
    for case, suffix in (("animated_gif", ".png"), ("animated_webp", ".webp")):
        path = run.odd[case]
        (note,) = run.lines_about(path)
        assert note == f"cmfnet: note: {path}: animated image: only the first of 3 frames is restored"
        output = path.with_name(f"{path.stem}.{TASK}{suffix}")
        assert output in run.written
        first = read_image(output).pixels
        assert first[..., 0].mean() > first[..., 2].mean() + 100  # red, the first frame


@pytest.mark.parametrize("name", ODD_NAMES)
def test_file_names_with_spaces_unicode_or_a_leading_dash(run, name):
    expected = run.folder / name.replace(".png", f".{TASK}.png")
    assert expected in run.written and read_image(expected).pixels.shape == (72, 100, 3)


def test_a_taken_output_name_gets_the_next_free_counter(run):
    assert run.folder / "taken.deblur-4.png" in run.written
    assert (run.folder / "taken.deblur.png").read_bytes() == b"an earlier result"
    assert (run.folder / "taken.deblur-2.png").is_symlink()
    assert (run.folder / "taken.deblur-3.png").is_dir()


# ==================================================================== reading, in detail

def test_ycck_jpeg_gives_the_same_colours_as_cmyk(tmp_path):
    ycck = read_image(corpus.ycck_jpeg(tmp_path)).pixels.astype(int)
    cmyk = read_image(corpus.cmyk_jpeg(tmp_path)).pixels.astype(int)
    expected = corpus.gradient(24, 32).astype(int)
    assert np.abs(ycck - expected).mean() < 3 and np.abs(cmyk - expected).mean() < 3


def test_sixteen_bit_gray_with_alpha_round_trips_as_gray_with_alpha(tmp_path):
    photo = read_image(corpus.gray16_alpha_png(tmp_path))
    assert photo.pixels.shape == (6, 10, 2) and photo.pixels.dtype == np.uint16
    assert photo.pixels[0, 0].tolist() == [7, 40000]
    again = read_image(write_image(tmp_path / "out.png", photo.pixels, photo.info))
    assert np.array_equal(again.pixels, photo.pixels)


def test_damaged_pixel_data_is_refused_not_read_as_a_blank_photo(tmp_path):
    """Pillow reports a broken PNG stream only once; reading EXIF first used to swallow it."""
    with pytest.raises(ImageError, match="damaged"):
        read_image(corpus.corrupt_png(tmp_path))


def test_an_animated_gif_with_a_damaged_later_frame_gives_its_first_frame(tmp_path):
    data = corpus.animated("GIF", ".gif")(tmp_path).read_bytes()
    cut = tmp_path / "cut.gif"
    cut.write_bytes(data[: len(data) * 2 // 3] + b"\xff\xff\xff")
    photo = read_image(cut)
    assert photo.pixels[0, 0].tolist() == [255, 0, 0] and "frame" in photo.info.notes[0]


def test_a_broken_exif_block_keeps_the_pixels(tmp_path):
    import io

    photo = read_image(corpus.broken_exif_jpeg(tmp_path))
    without_exif = Image.open(io.BytesIO(corpus.encoded("JPEG", corpus.gradient(24, 32), quality=95)))
    assert np.array_equal(photo.pixels, np.asarray(without_exif))


def test_the_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = save_png(tmp_path / "small.png", corpus.gradient(30, 40))
    monkeypatch.setenv("CMFNET_MAX_PIXELS", "1000")
    with pytest.raises(ImageError, match=r"40 x 30 pixels is over the limit of 1,000 \(set CMFNET_MAX_PIXELS"):
        read_image(path)
    monkeypatch.setenv("CMFNET_MAX_PIXELS", "1200")
    assert read_image(path).pixels.shape == (30, 40, 3)


def test_a_decompression_bomb_is_refused_before_any_allocation(tmp_path):
    """Under a 1 GB address-space limit: the 30 GB the header asks for is never requested."""
    bomb = corpus.png_bomb(tmp_path)
    code = ("import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from cmfnet_core.imageio import read_image, ImageError\n"
            f"try:\n    read_image({str(bomb)!r})\nexcept ImageError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "over the limit" in result.stdout, result.stderr


def test_a_huge_file_is_refused_without_being_read(tmp_path, monkeypatch):
    """A 2 GB video renamed .jpg must not be loaded into memory to find out."""
    path = tmp_path / "movie.jpg"
    with open(path, "wb") as handle:  # sparse: takes no disk space
        handle.truncate(2 << 30)
    monkeypatch.setenv("CMFNET_MAX_PIXELS", "1000000")
    with pytest.raises(ImageError, match=r"2,147,483,648 bytes is more than any photo within the limit"):
        read_image(path)


# ==================================================================== writing: the disk says no

def _mount_namespace_available() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt || exit 1"],
                           capture_output=True)
    return probe.returncode == 0


needs_mounts = pytest.mark.skipif(not _mount_namespace_available(),
                                  reason="platform: needs 'unshare -m' and mount rights (root or a user namespace)")


def in_mount_namespace(script: str, *args, **kwargs) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace: its mounts vanish with it."""
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600, **kwargs)


@pytest.fixture
def good_photo(tmp_path, photo_rgb) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return save_png(folder / "fine.png", photo_rgb)


@needs_mounts
def test_a_read_only_folder_fails_that_file_only(tmp_path, photo_rgb, good_photo, small_weights):
    locked = tmp_path / "locked"
    locked.mkdir()
    photo = save_png(locked / "holiday.png", photo_rgb)
    before = snapshot(locked)
    result = in_mount_namespace(
        'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" || exit 99\n'
        'shift; exec "$@"',
        locked, sys.executable, "-m", "cmfnet_core.cli", "restore", photo, good_photo,
        "--task", TASK, "--weights", small_weights, "-q", *FAST)
    assert result.returncode == 1, result.stderr
    (line,) = error_lines(result.stderr)
    assert str(photo.with_name("holiday.deblur.png")) in line and "read-only" in line
    assert snapshot(locked) == before
    assert result.stdout.split() == [str(good_photo.with_name("fine.deblur.png"))]


@needs_mounts
def test_a_full_disk_fails_that_file_only_and_leaves_no_partial_file(tmp_path, photo_rgb, good_photo,
                                                                      small_weights):
    disk = tmp_path / "disk"
    disk.mkdir()
    source = save_png(tmp_path / "holiday.png", photo_rgb)
    script = (
        'disk=$1; shift\n'
        'mount -t tmpfs -o size=256k tmpfs "$disk" || exit 99\n'
        'cp "$1" "$disk/holiday.png" && cat /dev/zero > "$disk/filler" 2>/dev/null\n'
        'shift; "$@"; echo "rc=$?"\n'
        'ls -A "$disk"; sha256sum "$disk/holiday.png"\n')
    result = in_mount_namespace(
        script, disk, source, sys.executable, "-m", "cmfnet_core.cli", "restore", disk / "holiday.png",
        good_photo, "--task", TASK, "--weights", small_weights, "-q", *FAST)
    output = result.stdout.split()
    assert "rc=1" in output, result.stderr
    (line,) = error_lines(result.stderr)
    assert "holiday.deblur.png" in line and "the disk is full" in line
    listing = output[output.index("rc=1") + 1:-2]
    assert sorted(listing) == ["filler", "holiday.png"]  # no output, no .part file
    assert output[-2] == digest(source)  # the original, byte-identical
    assert str(good_photo.with_name("fine.deblur.png")) in output


def test_a_file_size_limit_fails_the_write_cleanly(tmp_path, small_weights):
    """Where mounts are not allowed: RLIMIT_FSIZE makes the write fail the same way."""
    noisy = save_png(tmp_path / "noisy.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    before = snapshot(tmp_path)
    code = ("import resource, signal, sys\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "from cmfnet_core.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    result = subprocess.run([sys.executable, "-c", code, "restore", noisy, "--task", TASK,
                             "--weights", small_weights, "-q", *FAST],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert "noisy.deblur.png" in line and "too large" in line
    assert snapshot(tmp_path) == before


def test_an_existing_output_is_never_replaced_without_overwrite(tmp_path, photo_file, small_weights):
    target = tmp_path / "result.png"
    target.write_bytes(b"keep me")
    result = run_cli("restore", photo_file, "-o", target, "--task", TASK, "--weights", small_weights,
                     "-q", *FAST)
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert str(target) in line and "already exists" in line
    assert target.read_bytes() == b"keep me" and leftovers(tmp_path) == []


# ==================================================================== interrupted while saving

# The save is held until stdin closes; the test closes it only after its signal is sent.
SLOW_SAVE = """
import os, sys
def slow_fsync(fd):  # the new file is fully written to its temporary name, not yet renamed
    print("WRITING", file=sys.stderr, flush=True)
    sys.stdin.read()
os.fsync = slow_fsync
from cmfnet_core.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig,overwrite", [(signal.SIGINT, False), (signal.SIGTERM, True)],
                         ids=["SIGINT-new-output", "SIGTERM-replacing-an-output"])
def test_an_interrupted_save_leaves_the_old_state(tmp_path, photo_file, small_weights, sig, overwrite):
    target = tmp_path / "result.png"
    if overwrite:
        target.write_bytes(b"the previous result")
    before = snapshot(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, "restore", photo_file, "-o", target, "--task", TASK,
         "--weights", small_weights, "-q", *FAST, *(["--overwrite"] if overwrite else [])],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if line.startswith("WRITING"):
            assert len(leftovers(tmp_path)) == 1  # caught in the middle of the save
            process.send_signal(sig)
            break
    process.communicate(timeout=120)  # closes stdin: the held save goes on, interrupted
    assert process.returncode == 130
    assert snapshot(tmp_path) == before  # the old result (or none), and no .part file


# ==================================================================== weights files

class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def bad_weights(kind: str, folder: Path, official: Path) -> Path:
    import pickle

    path = folder / f"{kind}.pth"
    if kind == "truncated":
        path.write_bytes(official.read_bytes()[:1_000_000])
    elif kind == "zero_byte":
        path.write_bytes(b"")
    elif kind == "another_network":
        state = {"intro.weight": np.zeros((32, 3, 3, 3), np.float32),
                 "ending.weight": np.zeros((3, 32, 3, 3), np.float32)}
        path.write_bytes(pickle.dumps({"params": state}))
    elif kind == "wrong_shape":
        state = dict(read_weights(official).state)
        state["tail.weight"] = np.zeros((3, 16, 5, 5), np.float32)
        path.write_bytes(pickle.dumps({"state_dict": state}))
    elif kind == "runs_code":
        path.write_bytes(pickle.dumps({"state_dict": {"x": _Exploit(folder / "pwned")}}))
    return path


WEIGHTS_CASES = {"truncated": "damaged or truncated", "zero_byte": "empty",
                 "another_network": "NAFNet", "wrong_shape": r"tail\.weight is \(3, 16, 5, 5\)",
                 "runs_code": "refused to load: the file asks to import posix.system"}


@pytest.mark.parametrize("kind", sorted(WEIGHTS_CASES))
def test_bad_weights_exit_3_with_one_line_and_touch_nothing(tmp_path, photo_file, small_weights, kind):
    weights = bad_weights(kind, tmp_path, small_weights)
    before = snapshot(photo_file.parent)
    result = run_cli("restore", photo_file, "--task", TASK, "--weights", weights, *FAST)
    assert result.returncode == 3
    (line, hint) = [l for l in result.stderr.splitlines() if l.strip()]
    assert hint.startswith("cmfnet: hint: ") and "cmfnet weights import" in hint
    prefix = f"cmfnet: error: {weights.name}: "
    assert line.startswith(prefix)
    assert re.search(WEIGHTS_CASES[kind], line[len(prefix):]), line
    assert snapshot(photo_file.parent) == before
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("kind", sorted(WEIGHTS_CASES))
def test_bad_weights_through_the_engine_api(tmp_path, small_weights, kind):
    from cmfnet_core.engine import Restorer

    weights = bad_weights(kind, tmp_path, small_weights)
    with pytest.raises(WeightsError) as error:
        Restorer(TASK, weights, backend="paddle")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{weights.name}: ")
    assert re.search(WEIGHTS_CASES[kind], message[len(weights.name) + 2:]), message
    assert not (tmp_path / "pwned").exists()


# What the fuzzer found (tests/test_fuzz.py): each was a crash or a memory blow-up before.

def _pickle_file(folder: Path, data: bytes) -> Path:
    path = folder / "hostile.pth"
    path.write_bytes(data)
    return path


def test_a_huge_memo_index_is_refused_without_allocating(tmp_path):
    """LONG_BINPUT 2**31-1: the unpickler would allocate 32 GB for its memo table."""
    path = _pickle_file(tmp_path, b"\x80\x02]r\xff\xff\xff\x7f.")
    with pytest.raises(WeightsError, match="memo slot 2,147,483,647"):
        read_weights(path)


def _text(value: str) -> bytes:
    raw = value.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw  # pickle BINUNICODE


def test_a_tensor_bigger_than_its_storage_is_refused(tmp_path):
    """A zero stride repeats one stored value: 2**40 float32 values from a 4-byte storage."""
    storage = b"(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text("0") + _text("cpu") + b"K\x01tQ"
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage + b"K\x00"
              + b"\x8a\x06\x00\x00\x00\x00\x00\x01\x85"  # size (2**40,)
              + b"K\x00\x85\x89ccollections\nOrderedDict\n)RtR")  # stride (0,), no grad, hooks
    path = tmp_path / "zero_stride.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}" + _text("w") + tensor + b"s.")
        archive.writestr("archive/data/0", np.float32(1).tobytes())
    with pytest.raises(WeightsError, match="more values than its storage"):
        read_weights(path)


def test_a_dtype_with_forged_flags_gives_a_clean_array(tmp_path):
    """A pickle can set float32's internal "holds Python objects" flag through its state."""
    import pickle

    from cmfnet_core.checkpoint import load_pickled

    honest = pickle.dumps({"w": np.ones(3, np.float32)}, protocol=2)
    flags = b"\xff\xff\xff\xffK\x00t"  # ..., alignment -1, flags 0) of the dtype's state
    assert honest.count(flags) == 1
    path = _pickle_file(tmp_path, honest.replace(flags, b"\xff\xff\xff\xffK)t"))  # flags 0x29
    array = load_pickled(path)["w"]
    assert array.dtype == np.float32 and not array.dtype.hasobject and array.tolist() == [1, 1, 1]


def test_an_encrypted_zip_member_is_a_clear_error(tmp_path, small_weights):
    data = bytearray(small_weights.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:  # the "encrypted" bit in every central directory entry
        data[at + 8] |= 0x01
        at = data.find(b"PK\x01\x02", at + 4)
    with pytest.raises(WeightsError, match="encrypted"):
        read_weights(_pickle_file(tmp_path, bytes(data)))


# ==================================================================== the right-click runner

def test_right_click_restore_with_a_bad_file_among_good_ones(tmp_path, photo_rgb, small_weights):
    folder = tmp_path / "My Photos"
    folder.mkdir()
    good = [save_png(folder / f"good {i}.png", photo_rgb[:40, :56]) for i in (1, 2)]
    bad = corpus.truncated("JPEG", ".jpg")(folder)
    before = snapshot(folder)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    notes = tmp_path / "notes.log"
    (bin_dir / "notify-send").write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" >> '{notes}'\necho >> '{notes}'\n")
    (bin_dir / "notify-send").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", CMFNET_BACKEND="paddle",
               XDG_STATE_HOME=str(tmp_path / "state"))
    result = subprocess.run(
        [sys.executable, str(ROOT / "plugin" / "desktop" / "restore_here.py"), "--task", TASK,
         "--save", "--weights", str(small_weights), good[0], bad, good[1]],
        capture_output=True, text=True, env=env, cwd=folder, timeout=600)
    assert result.returncode == 1
    assert all(p.with_name(p.stem + f".{TASK}.png").is_file() for p in good)
    after = snapshot(folder)
    assert {name: after[name] for name in before} == before and len(after) == len(before) + 2
    assert leftovers(folder) == []
    last = notes.read_text().rsplit("--app-name|", 1)[-1]  # the body may have lines of its own
    assert "Deblurred 2 of 3 photos; 1 could not be restored" in last
    assert f"{bad}: damaged image (the file is truncated)" in last


# ==================================================================== a 40000 x 200 panorama

class _Identity:
    """A backend that returns its tile: the engine's own memory and blending, without the network."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        return batch


def test_a_40000_x_200_panorama_needs_memory_in_proportion_to_the_photo(tmp_path, small_weights, monkeypatch):
    import tracemalloc

    from cmfnet_core.engine import Restorer

    photo = read_image(corpus.panorama(tmp_path))
    assert photo.pixels.shape == (200, 40_000, 3)
    restorer = Restorer(TASK, small_weights, tile=256, overlap=32, backend="paddle")
    monkeypatch.setattr(restorer, "backend", lambda tile_shape: _Identity())
    tracemalloc.start()
    try:
        out = restorer.restore(photo.pixels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, photo.pixels)  # every tile lands where it belongs, seams blend exactly
    # the output, plus one row of tiles in floats (4x a photo only one tile high): 6.0x measured, was 12x
    assert peak < 7 * photo.pixels.nbytes
    written = read_image(write_image(tmp_path / "panorama.deblur.jpg", out, photo.info))
    assert written.pixels.shape == (200, 40_000, 3)


def test_a_tall_photo_needs_one_row_of_tiles_in_floats_not_the_photo(small_weights, monkeypatch):
    """Memory bounded by the tile: finished rows go straight into the output."""
    import tracemalloc

    from cmfnet_core.engine import Restorer

    pixels = np.random.default_rng(7).integers(0, 256, (4000, 600, 3), dtype=np.uint8)
    restorer = Restorer(TASK, small_weights, tile=256, overlap=32, backend="paddle")
    monkeypatch.setattr(restorer, "backend", lambda tile_shape: _Identity())
    tracemalloc.start()
    try:
        out = restorer.restore(pixels)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(out, pixels)
    row_of_tiles = 256 * 600 * 3 * 4  # float32 RGB
    assert peak < pixels.nbytes + 3 * row_of_tiles  # the output + about one row of tiles (was 12x the photo)


MEASURED_CLI = """
import sys
from cmfnet_core.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:  # VmHWM: this process's peak, not its parent's at fork
    peak = next(line for line in status if line.startswith("VmHWM:")).split()[1]
print("PEAK_RSS_KB", peak, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.slow
def test_a_40000_x_200_panorama_through_the_cli(tmp_path, small_weights):
    """The real network, 180 tiles of 256: 8 to 18 minutes on two busy cores; peak RSS 0.87 GB."""
    source = corpus.panorama(tmp_path)
    result = subprocess.run([sys.executable, "-c", MEASURED_CLI, "restore", source, "--task", TASK,
                             "--weights", small_weights, "-q", "--backend", "paddle", "--tile", "256",
                             "--overlap", "32"], capture_output=True, text=True, cwd=ROOT, timeout=3600)
    assert result.returncode == 0, result.stderr
    assert read_image(Path(result.stdout.strip())).pixels.shape == (200, 40_000, 3)
    peak = int(re.search(r"PEAK_RSS_KB (\d+)", result.stderr).group(1)) * 1024
    assert peak < 2 * 1024**3, f"peak RSS {peak / 1024**3:.2f} GB"


# ==================================================================== a batch (tests/bench/batch_memory.py runs 200)

def test_a_batch_of_20_photos_in_one_run_gives_20_correct_outputs(tmp_path, small_weights):
    from tests.bench.batch_memory import check, expected_outputs, make_photos

    paths = make_photos(tmp_path, 20, seed=3, size=(40, 48))  # one 64 px tile each
    result = run_cli("restore", *paths, "--task", TASK, "--weights", small_weights, "-q", *FAST)
    assert result.returncode == 0, result.stderr
    outputs = [Path(line) for line in result.stdout.splitlines()]
    assert len(outputs) == 20 and check(outputs, expected_outputs(paths, small_weights)) == 0
    assert leftovers(tmp_path) == []


# ==================================================================== the GIMP bridge (its CLI child)

@pytest.mark.parametrize("kind", ["runs_code", "truncated"])
def test_the_gimp_bridge_reports_bad_weights_in_one_line(tmp_path, photo_file, small_weights, kind):
    from tests.test_gimp import bridge

    weights = bad_weights(kind, tmp_path, small_weights)
    config = bridge.Config(python=sys.executable, project_dir=str(ROOT), weights=str(weights))
    result = tmp_path / "restored"  # the bridge's output folder: the engine writes IN.TASK.png there
    command = bridge.engine_command(config, str(photo_file), str(result), TASK, tile=64, overlap=16)
    with pytest.raises(bridge.BridgeError) as error:
        bridge.run_engine(command, cwd=str(ROOT))
    prefix = f"CMFNet Restore failed: {weights.name}: "
    message, step = str(error.value).split("\n")
    assert error.value.kind == "weights" and step == bridge.NEXT_STEPS["weights"]
    assert message.startswith(prefix) and re.search(WEIGHTS_CASES[kind], message[len(prefix):])
    assert not result.exists() and not (tmp_path / "pwned").exists()


def test_a_zero_dimensional_tensor_where_a_conv_weight_belongs(tmp_path, small_weights):
    """Found by the fuzzer: the network widths are read from shapes; a 0-d array had none."""
    import pickle

    state = dict(read_weights(small_weights).state)
    state["stage1_encoder.down12.down.1.weight"] = np.float32(1.0) * np.ones((), np.float32)
    with pytest.raises(WeightsError, match="not a CMFNet checkpoint"):
        read_weights(_pickle_file(tmp_path, pickle.dumps(state)))


@pytest.mark.parametrize("sidecar", ['["a list"]', '{"config": 3}', '{"config": {"n_feet": 16}}'])
def test_a_sidecar_that_does_not_describe_weights(tmp_path, small_weights, sidecar):
    from cmfnet_core.weights import save_weights

    path = save_weights(read_weights(small_weights), tmp_path / "mine.pdparams", task=TASK, provenance={})
    path.with_suffix(".json").write_text(sidecar)
    with pytest.raises(WeightsError, match="sidecar"):
        read_weights(path)
