"""Read pickled weight files without torch or paddle, and without running their code.

Official CMFNet checkpoints are ``torch.save``d dicts (zip or legacy format);
the PaddlePaddle article's ``.pdparams`` are pickles of numpy arrays. Both
are pickles, and a pickle can run any code it names. This module unpickles
with an allow-list: containers, numpy array reconstruction and torch's
tensor/storage rebuild functions, which are mapped onto numpy. Any other
name in the file is refused with :class:`UnsafePickleError`.
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .i18n import _

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C

_TORCH_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class CheckpointError(ValueError):
    """The file is not a readable checkpoint."""


class UnsafePickleError(CheckpointError):
    """The pickle names something outside the allow-list (it could run code)."""


@dataclass
class _StorageType:
    name: str


@dataclass
class _Storage:
    dtype: object
    key: str
    numel: int
    data: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple
    stride: tuple

    def materialise(self) -> np.ndarray:
        flat = self.storage.data
        if flat is None:
            raise CheckpointError(f"storage {self.storage.key} has no data (truncated file?)")
        if not self.size:
            return flat[self.offset:self.offset + 1].reshape(()).copy()
        if (len(self.size) != len(self.stride) or min(self.size) < 0 or min(self.stride) < 0
                or self.offset < 0):
            raise CheckpointError("a tensor has a negative size, stride or offset (damaged file?)")
        if math.prod(self.size) > flat.size:  # e.g. a zero stride repeating one value: a memory bomb
            raise CheckpointError("a tensor claims more values than its storage holds (damaged file?)")
        count = 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset + count > flat.size:
            raise CheckpointError("a tensor reaches past the end of its storage (truncated file?)")
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * item for s in self.stride])
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
    return data


def _bfloat16_to_float32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _clean_dtype(dtype) -> np.dtype:
    """A fresh dtype of the same plain numeric type.

    A pickle sets a dtype's internal flags through its state (e.g. "holds Python
    objects" on float32), which numpy then trusts; arrays are therefore built
    from a clean copy, and only plain numbers are accepted.
    """
    if (not isinstance(dtype, np.dtype) or dtype.fields is not None or dtype.subdtype is not None
            or dtype.kind not in "biuf"):
        raise CheckpointError(f"unsupported array type {dtype!r:.40} (weights are plain numbers)")
    return np.dtype(dtype.str)


class _ArrayState:
    """Stands in for a numpy array while unpickling; the array is made in __setstate__."""

    array: np.ndarray | None = None

    def __setstate__(self, state) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise CheckpointError("a numpy array in the file is damaged")
        array = _multiarray._reconstruct(np.ndarray, (0,), b"b")
        array.__setstate__(state[:-3] + (_clean_dtype(state[-3]),) + state[-2:])
        self.array = array


def _reconstruct(cls, shape, typecode) -> _ArrayState:
    if cls is not np.ndarray:
        raise UnsafePickleError(f"refused to load: unexpected array class {cls!r:.60}")
    return _ArrayState()


def _scalar(dtype, data=b""):
    return _multiarray.scalar(_clean_dtype(dtype), data)


def _frombuffer_v5(buffer, dtype, shape, order="C") -> np.ndarray:
    """numpy's reduction of arrays for pickle protocol 5."""
    flat = np.frombuffer(buffer, dtype=_clean_dtype(dtype))
    if order == "F":
        return flat.reshape(tuple(shape)[::-1]).T.copy()
    return flat.reshape(tuple(shape)).copy()


def _encode(text, encoding="latin1") -> bytes:
    """How pickle protocols 0-2 store bytes: ``_codecs.encode(text, "latin1")``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError("the file stores bytes in an unexpected way")
    return text.encode("latin1")


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "scalar"): _scalar,
        ("numpy._core.multiarray", "scalar"): _scalar,
        ("_codecs", "encode"): _encode,
        ("numpy._core.numeric", "_frombuffer"): _frombuffer_v5,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer_v5,
    }

    def __init__(self, file, storages: dict[str, _Storage], zip_reader=None):
        super().__init__(file)
        self._storages = storages
        self._zip_reader = zip_reader

    def find_class(self, module, name):
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(name)
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module.startswith("torch.nn"):
            raise UnsafePickleError(
                f"the file holds a pickled model object ({module}.{name}), not a state dict; "
                "save model.state_dict() instead")
        raise UnsafePickleError(
            f"refused to load: the file asks to import {module}.{name}, "
            "which a weights file never needs (it could run code)")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise UnsafePickleError(f"unexpected persistent id {pid!r:.60}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4] if len(pid) > 4 else None
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unknown storage type {storage_type!r:.60}")
        if key not in self._storages:
            dtype = _TORCH_DTYPES[storage_type.name]
            storage = _Storage(dtype, key, int(numel) if numel is not None else -1)
            if self._zip_reader is not None:
                storage.data = self._zip_reader(key, dtype, storage.numel)
            self._storages[key] = storage
        return self._storages[key]


MEMO_SLACK = 1 << 16


def quiet_escape_warnings() -> None:
    """Silence the "invalid escape sequence" noise of reading a protocol-0 pickle.

    Protocol-0 strings are decoded with Python's escape decoder, which warns
    (DeprecationWarning) of a backslash it does not know: once from
    ``pickletools.genops`` walking the file (attributed to pickletools), once
    from the unpickler (attributed to this module). Either way the file is then
    read or refused. Set once at import, for that message from those two modules
    only, never around each read: ``warnings.catch_warnings`` swaps the
    process-wide filter list and puts its copy back on exit, so a weights read on
    one thread could undo (or leak) the filters of a photo read on another.
    """
    warnings.filterwarnings("ignore", message="invalid escape sequence", category=DeprecationWarning,
                            module=r"(pickletools|cmfnet_core\.checkpoint)\Z")


quiet_escape_warnings()


def _check_opcodes(handle) -> None:
    """Walk the next pickle in ``handle`` without running it, then rewind.

    The unpickler trusts the file's numbers: a memo index of two billion makes it
    allocate (and clear) tens of gigabytes before failing. Real pickles number their
    memo entries 0, 1, 2, ...; refuse indices far beyond the entries made so far.
    Lengths that reach past the end of the file are refused here too.
    """
    start = handle.tell()
    entries = 0
    try:
        for opcode, arg, _pos in pickletools.genops(handle):
            if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
                if not 0 <= int(arg) <= entries + MEMO_SLACK:
                    raise CheckpointError(f"the pickle uses memo slot {int(arg):,} after only "
                                          f"{entries:,} entries (damaged or hostile file)")
                entries = max(entries, int(arg) + 1)
            elif opcode.name == "MEMOIZE":
                entries += 1
    except CheckpointError:
        raise
    except ValueError as exc:  # what genops says of truncated or garbled opcodes
        raise CheckpointError(_("the file is damaged or truncated ({reason})").format(reason=exc)) from None
    handle.seek(start)


def _safe_load(handle, storages: dict, zip_reader=None):
    _check_opcodes(handle)
    return _RestrictedUnpickler(handle, storages, zip_reader).load()


def _frombuffer(raw: bytes, dtype) -> np.ndarray:
    if dtype == "bfloat16":
        return _bfloat16_to_float32(np.frombuffer(raw, dtype="<u2"))
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))


def _resolve(obj):
    """Replace tensor references by numpy arrays, walking the loaded structure."""
    if isinstance(obj, _TensorRef):
        return obj.materialise()
    if isinstance(obj, _ArrayState):
        if obj.array is None:
            raise CheckpointError("a numpy array in the file has no data")
        return obj.array
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _resolve(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_resolve(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_resolve(v) for v in obj)
    return obj


def _load_torch_zip(source):
    with zipfile.ZipFile(source) as archive:
        names = archive.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise CheckpointError(_("zip file without data.pkl: not a PyTorch checkpoint"))
        root = pkl[0][: -len("data.pkl")]
        byteorder = root + "byteorder"
        if byteorder in names and archive.read(byteorder).strip() != b"little":
            raise CheckpointError("big-endian checkpoints are not supported")

        def read_storage(key, dtype, numel):
            name = f"{root}data/{key}"
            try:
                size = archive.getinfo(name).file_size
            except KeyError:
                raise CheckpointError(f"storage data/{key} is missing from the archive") from None
            itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
            if numel >= 0 and size > numel * itemsize:  # a small member that inflates to gigabytes
                raise CheckpointError(f"storage data/{key} is larger than its {numel:,} values")
            return _frombuffer(archive.read(name), dtype)

        return _resolve(_safe_load(io.BytesIO(archive.read(pkl[0])), {}, read_storage))


def _load_torch_legacy(handle) -> object:
    # layout: magic, protocol version, sys info, the object pickle, the storage keys, raw storages
    for expected in ("magic", "protocol", "sysinfo"):
        value = _safe_load(handle, {})
        if expected == "magic" and value != LEGACY_MAGIC:
            raise CheckpointError(_("not a PyTorch legacy checkpoint (bad magic number)"))
    storages: dict[str, _Storage] = {}
    result = _safe_load(handle, storages)
    keys = _safe_load(handle, {})
    end = len(handle.getbuffer())
    for key in keys:
        storage = storages[str(key)]
        header = handle.read(8)
        if len(header) < 8:
            raise CheckpointError("the file ends before all tensors were read (truncated file?)")
        (numel,) = struct.unpack("<q", header)
        itemsize = 2 if storage.dtype == "bfloat16" else np.dtype(storage.dtype).itemsize
        if not 0 <= numel * itemsize <= end - handle.tell():
            raise CheckpointError("the file ends before all tensors were read (truncated file?)")
        raw = handle.read(numel * itemsize)
        storage.data = _frombuffer(raw, storage.dtype)
    return _resolve(result)


def load_pickled(path: str | Path):
    """Load a torch (zip or legacy) checkpoint or a pickled ``.pdparams``, safely.

    Tensors come back as numpy arrays; containers as dicts, lists and tuples.
    Raises :class:`CheckpointError` (or its subclass :class:`UnsafePickleError`).
    """
    path = Path(path)
    try:
        handle = io.BytesIO(path.read_bytes())
    except OSError as exc:
        raise CheckpointError(_("cannot read the file ({reason})").format(reason=exc.strerror or exc)) from None
    try:
        if zipfile.is_zipfile(handle):
            return _load_torch_zip(handle)
        handle.seek(0)
        head = handle.read(2)
        if not head:
            raise CheckpointError(_("the file is empty"))
        if head == b"PK":
            raise CheckpointError(_("the zip archive is damaged or truncated (its directory is missing)"))
        if head[:1] != b"\x80":
            raise CheckpointError(_("not a pickle or zip checkpoint"))
        handle.seek(0)
        first = _safe_load(handle, {})
        if first == LEGACY_MAGIC:
            handle.seek(0)
            return _load_torch_legacy(handle)
        return _resolve(first)
    except CheckpointError:
        raise
    except RecursionError:
        raise CheckpointError("the file nests containers too deeply to be weights") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error, zlib.error,
            NotImplementedError, OSError, RuntimeError) as exc:
        # zipfile: unsupported compression, "encrypted", seek before the start
        raise CheckpointError(f"the file is damaged or truncated ({exc.__class__.__name__}: {exc})") from None
    except (ValueError, TypeError, LookupError, AttributeError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"the file's contents are not a checkpoint ({exc.__class__.__name__}: {exc})") from None
