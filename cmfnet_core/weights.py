"""Weights files: read any supported format, check it, store it, find it.

Supported inputs:

* official PyTorch checkpoints (``{'state_dict': ...}``, zip or legacy format,
  keys with or without ``module.``), read without torch;
* PaddlePaddle ``.pdparams`` (the article's format: a pickled dict of arrays);
* the project's own format: ``NAME.pdparams`` plus ``NAME.json`` beside it,
  holding task, network config, sha256 of the ``.pdparams`` and provenance.

Installed weights live in ``resources/weights/`` (:mod:`.bundled`: bundled defaults, trained by
this project) and in the user data dir (imported, e.g. the authors' official
files). :func:`default_weights` prefers imported official weights.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .bundled import RESOURCES, WEIGHTS  # noqa: F401  (RESOURCES: re-exported for callers)
from .checkpoint import CheckpointError, load_pickled
from .files import write_atomic
from .i18n import _
from .network_config import Config, expected_shapes
from .tasks import TASKS

FORMAT = "cmfnet-restore/1"
BUNDLED_DIR = WEIGHTS

# Keys that give away which network a foreign checkpoint belongs to.
_FINGERPRINTS = [
    ("NAFNet", ("intro.weight", "ending.weight")),
    ("MPRNet", ("sam12.conv1.weight", "concat12.weight", "stage3_orsnet.orb1.body.0.body.0.weight")),
    ("Restormer", ("patch_embed.proj.weight", "output.weight")),
    ("Real-ESRGAN/ESRGAN", ("conv_first.weight", "conv_body.weight")),
    ("SwinIR", ("conv_first.weight", "patch_embed.norm.weight")),
]


class WeightsError(ValueError):
    """A weights file is missing, unreadable or does not fit CMFNet (one-line message)."""


@dataclass
class Weights:
    """A checked state dict, its network config and what is known about it."""

    state: dict[str, np.ndarray]
    config: Config
    meta: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def task(self) -> str | None:
        return self.meta.get("task")


def check_task(task: str) -> None:
    """Raise WeightsError (one line, the tasks there are) for a task this tool does not know."""
    if task not in TASKS:
        raise WeightsError(_("unknown task {task}; choose one of {tasks}").format(task=repr(task), tasks=', '.join(TASKS)))


def _user_data_dir() -> Path:
    override = os.environ.get("CMFNET_DATA_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_data_dir("cmfnet-restore", appauthor=False))


def user_weights_dir() -> Path:
    return _user_data_dir() / "weights"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- reading -----------------------------------------------------------------

def _extract_state(obj) -> dict:
    if isinstance(obj, dict):
        for key in ("state_dict", "params_ema", "params", "model"):
            if isinstance(obj.get(key), dict):
                return obj[key]
        return obj
    raise WeightsError(_("the file holds a {kind}, not a dict of weights").format(kind=type(obj).__name__))


def _normalise_keys(state: dict) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        if not isinstance(key, str):
            continue
        if not isinstance(value, np.ndarray):
            continue  # e.g. paddle's "StructuredToParameterName@@" name table
        if key.startswith("module."):
            key = key[len("module."):]
        if key.endswith("._weight"):  # paddle.nn.PReLU names its slope _weight
            key = key[: -len("._weight")] + ".weight"
        out[key] = value
    return out


def infer_config(state: dict[str, np.ndarray]) -> Config:
    """Work out the network widths from tensor shapes (files without a config)."""
    try:
        n_feat, _, k, _ = state["shallow_feat1.2.weight"].shape
        s = state["stage1_encoder.down12.down.1.weight"].shape[0] - n_feat
        squeezed = state["stage1_encoder.encoder_level1.0.CA.conv_du.0.weight"].shape[0]
    except (KeyError, ValueError, IndexError):  # IndexError: a 0-d array where a conv weight belongs
        raise WeightsError(_foreign_message(state)) from None
    return Config(n_feat=int(n_feat), scale_unetfeats=int(s),
                  reduction=max(1, int(n_feat) // max(1, int(squeezed))), kernel_size=int(k))


def _foreign_message(state: dict) -> str:
    keys = set(state)
    for name, marks in _FINGERPRINTS:
        if any(mark in keys for mark in marks):
            return _("this looks like a {name} checkpoint, not CMFNet").format(name=name)
    sample = ", ".join(sorted(keys)[:3]) or "none"
    return _("not a CMFNet checkpoint (first keys: {keys})").format(keys=sample)


def check_state(state: dict[str, np.ndarray], config: Config) -> dict[str, np.ndarray]:
    """Every expected key present with the expected shape, as float32; else WeightsError."""
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in state]
    if missing:
        hint = _foreign_message(state) if len(missing) > len(expected) // 2 else _("incomplete CMFNet checkpoint")
        raise WeightsError(_("missing {count} keys, first: {key}; {hint}").format(count=len(missing), key=missing[0], hint=hint))
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise WeightsError(_("{count} unexpected keys, first: {key}; "
                             "not the CMFNet architecture this tool runs").format(count=len(unexpected), key=unexpected[0]))
    wrong = [(k, tuple(state[k].shape), shape) for k, shape in expected.items()
             if tuple(state[k].shape) != shape]
    if wrong:
        key, got, want = wrong[0]
        raise WeightsError(f"{len(wrong)} tensors have the wrong shape, first: {key} is {got}, expected {want}")
    out = {}
    for key in expected:
        value = state[key]
        if not np.issubdtype(value.dtype, np.floating):
            raise WeightsError(f"{key} holds {value.dtype} values, expected floating point")
        if not np.all(np.isfinite(value)):
            raise WeightsError(f"{key} contains NaN or infinite values")
        out[key] = np.ascontiguousarray(value, dtype=np.float32)
    return out


def read_weights(path: str | os.PathLike) -> Weights:
    """Read and check any supported weights file. Raises WeightsError with one clear line."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(_("{path}: no such file").format(path=path))
    if path.is_dir():
        raise WeightsError(_("{path}: is a folder, expected a weights file").format(path=path))
    try:
        obj = load_pickled(path)
    except CheckpointError as exc:
        raise WeightsError(f"{path.name}: {exc}") from None
    meta = {}
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise WeightsError(_("{name}: unreadable sidecar ({reason})").format(name=sidecar.name, reason=exc)) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config", {}), dict):
            raise WeightsError(f"{sidecar.name}: the sidecar is not a weights description")
    try:
        state = _normalise_keys(_extract_state(obj))
        if not state:
            raise WeightsError("the file holds no tensors")
        try:
            config = Config(**meta["config"]) if "config" in meta else infer_config(state)
        except TypeError as exc:  # unknown or missing fields
            raise WeightsError(f"the sidecar's network config is invalid ({exc})") from None
        state = check_state(state, config)
    except WeightsError as exc:
        raise WeightsError(f"{path.name}: {exc}") from None
    if meta.get("sha256") and meta["sha256"] != sha256(path):
        raise WeightsError(_("{name}: sha256 does not match its sidecar (file changed or corrupt)").format(name=path.name))
    return Weights(state=state, config=config, meta=meta, path=path)


def load_network(path: str | os.PathLike, local_window: int = 0):
    """Build the Paddle CMFNet from any supported weights file, in eval mode.

    Calling the result on an N x 3 x H x W float32 RGB tensor in [0, 1]
    (H, W multiples of 4) returns the restored N x 3 x H x W tensor: the
    official output 0, not clamped.
    """
    return build_network(read_weights(path), local_window=local_window)


def build_network(weights: Weights, local_window: int = 0):
    import paddle

    from .network import CMFNet
    from .paddle_mode import eager_paddle

    with eager_paddle():
        network = CMFNet(weights.config)
        network.set_state_dict({k: paddle.to_tensor(v) for k, v in weights.state.items()})
        if local_window:
            network.set_local_statistics(local_window)
        network.eval()
    return network


# --- writing -------------------------------------------------------------------

def save_weights(weights: Weights, path: str | os.PathLike, *, task: str, provenance: dict) -> Path:
    """Write the project format: ``path`` (.pdparams, a plain pickle of float32 arrays
    that ``paddle.load`` also reads) and its ``.json`` sidecar."""
    check_task(task)
    return write_params(weights.state, path, {"format": FORMAT, "task": task,
                                              "config": weights.config.as_dict(),
                                              "provenance": provenance})


def write_params(state: dict, path: str | os.PathLike, meta: dict) -> Path:
    """``path`` (.pdparams, a plain pickle of float32 arrays) and its ``.json`` sidecar:
    ``meta`` plus the sha256 of the arrays file. Shared by CMFNet's and the detector's weights."""
    path = Path(path).with_suffix(".pdparams")
    payload = pickle.dumps({k: np.asarray(v, np.float32) for k, v in state.items()}, protocol=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, payload, overwrite=True)
    meta = dict(meta, sha256=hashlib.sha256(payload).hexdigest())
    write_atomic(path.with_suffix(".json"), (json.dumps(meta, indent=2) + "\n").encode(), overwrite=True)
    return path


def import_weights(task: str, source: str | os.PathLike, name: str | None = None,
                   kind: str = "official") -> Path:
    """Convert ``source`` (any supported format) into the user's weights folder."""
    check_task(task)
    source = Path(source)
    weights = read_weights(source)
    return install_weights(weights, task, source=source, name=name, kind=kind)


def install_weights(weights: Weights, task: str, *, source: Path, name: str | None = None,
                    kind: str = "official", provenance: dict | None = None) -> Path:
    """Store checked ``weights`` (read from ``source``) in the user's weights folder:
    only the model, as float32 (an optimizer state in the source is dropped)."""
    check_task(task)
    if weights.task and weights.task != task:
        raise WeightsError(_("{name} was made for {made_for}, not {task}").format(name=source.name, made_for=weights.task, task=task))
    target = user_weights_dir() / task / f"{name or source.stem}.pdparams"
    record = {"kind": kind, "source_file": source.name}
    if not (provenance or {}).get("source_sha256"):
        record["source_sha256"] = sha256(source)
    record.update(weights.meta.get("provenance", {}) if weights.meta else {})
    record.update(provenance or {})
    record["kind"] = kind
    return save_weights(weights, target, task=task, provenance=record)


# --- the registry of installed weights --------------------------------------------

@dataclass
class Installed:
    task: str
    path: Path
    meta: dict
    bundled: bool

    @property
    def kind(self) -> str:
        return "bundled" if self.bundled else self.meta.get("provenance", {}).get("kind", "imported")

    @property
    def config(self) -> dict:
        return self.meta.get("config", {})

    @property
    def full_size(self) -> bool:
        try:
            return Config(**self.config) == Config()
        except TypeError:
            return False

    @property
    def downloaded(self) -> bool:
        return bool(self.meta.get("provenance", {}).get("source_url"))

    @property
    def label(self) -> str:
        """What these weights are in a few words, without when or where from."""
        if self.bundled:
            return _("light, bundled (trained by this project)")
        size = _("full-size") if self.full_size else _("light")
        if self.downloaded or (self.kind == "official" and self.full_size):
            return _("the authors' ({size})").format(size=size)
        source = self.meta.get("provenance", {}).get("source_file", self.path.name)
        return _("imported from {source} ({size})").format(source=source, size=size)

    @property
    def description(self) -> str:
        """What these weights are, in a user's words (no widths, no jargon)."""
        provenance = self.meta.get("provenance", {})
        if self.downloaded:
            when = str(provenance.get("downloaded", ""))[:10]
            return _("{label}, downloaded {date}").format(label=self.label, date=when).rstrip()
        if self.kind == "official" and self.full_size and not self.bundled:
            source = provenance.get("source_file", self.path.name)
            return _("{label}, imported from {source}").format(label=self.label, source=source)
        return self.label


def _scan(folder: Path, task: str, bundled: bool) -> list[Installed]:
    found = []
    for sidecar in sorted(folder.glob("*.json")):
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        params = sidecar.with_suffix(".pdparams")
        if meta.get("format") == FORMAT and meta.get("task") == task and params.exists():
            found.append(Installed(task, params, meta, bundled))
    return found


def installed_weights(task: str) -> list[Installed]:
    """Bundled weights first, then those imported by the user."""
    return _scan(BUNDLED_DIR, task, True) + _scan(user_weights_dir() / task, task, False)


def _choices_file() -> Path:
    return user_weights_dir() / "defaults.json"


def _choices() -> dict:
    try:
        found = json.loads(_choices_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def set_default(task: str, choice: str | os.PathLike) -> None:
    """Make ``choice`` the task's default: ``"bundled"``, ``"official"`` (the newest of the
    authors' weights installed) or the path of an installed weights file."""
    check_task(task)
    choices = _choices()
    choices[task] = choice if choice in ("bundled", "official") else str(Path(choice).resolve())
    _choices_file().parent.mkdir(parents=True, exist_ok=True)
    write_atomic(_choices_file(), (json.dumps(choices, indent=2) + "\n").encode(), overwrite=True)


def chosen_default(task: str) -> str | None:
    """What the user chose for ``task`` (see :func:`set_default`), None if nothing."""
    return _choices().get(task)


def default_weights(task: str, entries: list[Installed] | None = None) -> Installed | None:
    """The user's choice (``cmfnet weights use``) when it is still installed; else imported
    official weights when present (newest first), else the bundled default. ``entries``:
    the task's :func:`installed_weights` where the caller has them (one scan of the folders)."""
    check_task(task)
    if entries is None:
        entries = installed_weights(task)
    bundled = [e for e in entries if e.bundled]
    official = [e for e in entries if e.kind == "official"]
    choice = chosen_default(task)
    if choice == "bundled" and bundled:
        return bundled[0]
    if choice not in (None, "bundled", "official"):
        for entry in entries:
            if str(entry.path.resolve()) == choice:
                return entry
    if official:
        return max(official, key=lambda e: e.path.stat().st_mtime)
    if bundled:
        return bundled[0]
    return entries[-1] if entries else None


def resolve_weights(task: str, weights: str | os.PathLike | None = None) -> Path:
    """The weights file to use for ``task``; a clear WeightsError if there is none."""
    if weights is not None:
        return Path(weights)
    entry = default_weights(task)
    if entry is None:
        raise WeightsError(
            _("no weights installed for {task}: get the authors' with 'cmfnet weights download "
              "{task}', import a file with 'cmfnet weights import {task} FILE.pth', or pass "
              "--weights FILE").format(task=task))
    return entry.path
