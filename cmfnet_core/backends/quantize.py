"""int8: the network quantised once per weights with NNCF, then fitted onto each tile shape.

Post-training quantisation (``nncf.quantize``) runs once per weights and
:class:`Recipe`, on the fp32 IR at the recipe's crop shape, with crops of the
photos that ship with the package (``calibration.py``). What it produces, the
*reference*, is kept in the cache (``cache.py``) beside the fp32 IR it was
made from. A tile shape's int8 model is that shape's fp32 IR with the
reference's changes copied on (:func:`transplant`): the same FakeQuantize
ranges, the same int8 weights, at the same places. Activation ranges are per
tensor, measured over whole crops, so they do not depend on the tile shape;
and the exported graph is the same for every shape but for its shape
constants. So a new photo shape costs an export and a graph edit (seconds),
not a calibration (tens of seconds), and every shape runs the same
quantisation.

The recipe's fidelity was measured on the bundled weights (``precision.py``).
Any other weights (downloaded, imported, trained by the user) get their own
check once calibrated (:func:`int8_verdict`): int8 against fp32 on held-out
crops of the same photos, kept beside the reference; where it falls short of
the bar, ``auto`` runs the float path for those weights instead, and says so.

Parts of the network can be left in floating point (:data:`KEEP_GROUPS`):
NNCF's ignored scope, filled with the nodes of the named modules, found
through their weights (each conv's weight Constant is matched to its
state-dict key by content, so no name has to survive the export).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..files import write_atomic
from ..i18n import _
from ..versions import version_of
from ..weights import BUNDLED_DIR, Weights
from .cache import cache_root, model_key, prune_cache, touch
from .calibration import calibration_crops
from .core import core
from .export import ensure_model, quiet_native_output
from .precision import INT8_MIN_PSNR, cpu_kind, float_precision, inference_hint, resolve_precision


@dataclass(frozen=True)
class Recipe:
    """Everything a quantisation depends on besides the weights (all of it is in the cache key).

    ``keep``: names from :data:`KEEP_GROUPS` left in floating point. ``ranges``: how
    each activation's range is taken from the crops, one of :data:`RANGES`.
    ``revision``: bump when this module changes what a recipe produces.
    """

    crops: int = 48
    crop: int = 128
    seed: int = 0
    preset: str = "performance"
    keep: tuple[str, ...] = ()
    fast_bias_correction: bool = True
    model_type: str | None = None
    ranges: str = "mean_minmax"
    overflow_fix: str = "first_layer_only"
    revision: int = 1

    def as_dict(self) -> dict:
        return dict(asdict(self), keep=sorted(self.keep))

    def replace(self, **changes) -> "Recipe":
        return Recipe(**dict(asdict(self), **changes))


#: module groups that can be kept out of int8: (state-dict key pattern of their convs, which
#: nodes around those convs go with them). "gate": the sigmoid each conv path feeds and the
#: multiply it gates; "downstream": every node after the convs, up to the output.
KEEP_GROUPS = {
    # channel/pixel/spatial attention: 1x1 (7x7) conv paths -> sigmoid -> x * gate
    "gates": (r"\.(CA|PA|SA)\.", "gate"),
    # supervised attention heads: the branch images and their sigmoid gate
    "sam": (r"^sam\do\.", "gate"),
    # the fusion and output convs, and the adds after them
    "output": (r"^(add123|concat123|tail)\.", "downstream"),
}

#: NNCF's range estimators for activations: "mean_minmax" (its default: the mean over crops
#: of each crop's min and max), "minmax" (the extremes over all crops), "histogram"
RANGES = ("mean_minmax", "minmax", "histogram")

#: the recipe ``--precision int8`` runs, chosen with tests/bench/int8_fidelity.py (8 dev
#: crops of 512 x 384, each task's default weights, outputs against fp32; Xeon Sapphire
#: Rapids, CPU loaded by a training run). NNCF's defaults: 20.0 dB at the worst, 34.3 mean,
#: -1.09 dB on the dev pairs (dehaze worst: ranges averaged over crops clip its activations).
#: The attention gates and output layers kept in floating point, ranges over all crops
#: (minmax) and asymmetric activations (preset mixed), together: 44.7 dB at the worst, 53.3
#: mean, -0.020 dB (any one of these alone: 27 dB at best on dehaze; minmax and mixed with
#: only the output kept: 31). Keeping the SAM heads too gained nothing (44.8 / 53.3 /
#: -0.020) and ran 1.16x slower. 48 crops of 128 (0.8 megapixels to calibrate on) did as
#: well as 32 of 256 (2.1 MP: 42.2 dB at the worst) or 96 of 128 (1.6 MP: 45.6); the worst
#: crop moves with the crops drawn (another seed: 45.2).
RECIPE = Recipe(preset="mixed", ranges="minmax", keep=("gates", "output"))

#: the shipped recipe on a CPU without int8 dot products (VNNI or AMX): there OpenVINO's int8
#: convolutions add pairs of u8 x s8 products in 16 bits, which saturate with full-range
#: 8-bit weights; NNCF's overflow fix quantises every layer's weights to 7 bits instead of
#: the first only. Measured on an AVX2-only Zen 1, dehaze weights, two 128 dev crops against
#: fp32: 40.1 / 38.6 dB with RECIPE, 50.6 / 46.1 with this.
RECIPE_NO_VNNI = RECIPE.replace(overflow_fix="enable")


def shipped_recipe(flags: frozenset[str] | None = None) -> Recipe:
    """The recipe ``--precision int8`` runs on a CPU with these flags (default: this one's):
    the plain one only where int8 dot products were seen (VNNI, AMX), else the overflow fix
    (its 7-bit weights are safe wherever the int8 sums may saturate)."""
    return RECIPE if cpu_kind(flags) in ("vnni", "amx") else RECIPE_NO_VNNI

_calibration_lock = threading.Lock()
_PASS_THROUGH = ("Identity", "Relu", "Convert")  # between a gate's conv and its sigmoid


# --- which nodes stay in floating point ---------------------------------------------------

def _weight_keys(weights: Weights) -> dict[str, str]:
    """sha256 of each 4-D weight's float32 bytes -> its state-dict key."""
    keys = {}
    for key, value in weights.state.items():
        value = np.asarray(value)
        if value.ndim == 4:
            keys[hashlib.sha256(np.ascontiguousarray(value, np.float32).tobytes()).hexdigest()] = key
    return keys


def _consumers(node) -> list:
    return [target.get_node() for output in node.outputs() for target in output.get_target_inputs()]


def _through(node, kinds=_PASS_THROUGH) -> list:
    """The consumers of ``node``, looking through pass-through ops."""
    found = []
    for consumer in _consumers(node):
        found += _through(consumer, kinds) if consumer.get_type_name() in kinds else [consumer]
    return found


def conv_modules(model, weights: Weights) -> dict[str, str]:
    """Each Convolution's friendly name -> the state-dict key of its weight."""
    keys = _weight_keys(weights)
    modules = {}
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        source = op.input(1).get_source_output().get_node()
        if source.get_type_name() == "Constant":
            digest = hashlib.sha256(np.ascontiguousarray(source.get_data(), np.float32).tobytes()).hexdigest()
            if digest in keys:
                modules[op.get_friendly_name()] = keys[digest]
    return modules


def kept_nodes(model, weights: Weights, groups) -> list[str]:
    """Friendly names of the nodes that the KEEP_GROUPS ``groups`` leave in floating point."""
    unknown = set(groups) - set(KEEP_GROUPS)
    if unknown:
        raise ValueError(f"unknown group {sorted(unknown)[0]!r}; choose from {', '.join(KEEP_GROUPS)}")
    modules = conv_modules(model, weights)
    by_name = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    kept: set[str] = set()
    for group in groups:
        pattern, reach = KEEP_GROUPS[group]
        convs = [by_name[name] for name, key in modules.items() if re.search(pattern, key)]
        kept.update(conv.get_friendly_name() for conv in convs)
        if reach == "gate":
            for conv in convs:
                for sigmoid in _through(conv):
                    if sigmoid.get_type_name() == "Sigmoid":
                        kept.add(sigmoid.get_friendly_name())
                        kept.update(node.get_friendly_name() for node in _through(sigmoid)
                                    if node.get_type_name() == "Multiply")
        else:
            stack = list(convs)
            while stack:
                for node in _consumers(stack.pop()):
                    if node.get_type_name() != "Result" and node.get_friendly_name() not in kept:
                        kept.add(node.get_friendly_name())
                        stack.append(node)
    return sorted(kept)


# --- calibration: the reference, once per weights and recipe ------------------------------

def _quantise(model, weights: Weights, recipe: Recipe):
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    if recipe.ranges not in RANGES:
        raise ValueError(f"unknown ranges {recipe.ranges!r}; choose from {', '.join(RANGES)}")
    crops = calibration_crops(recipe.crops, recipe.crop, recipe.seed)
    kept = kept_nodes(model, weights, recipe.keep)
    advanced = AdvancedQuantizationParameters(
        activations_range_estimator_params=getattr(RangeEstimatorParametersSet, recipe.ranges.upper()),
        overflow_fix=OverflowFix(recipe.overflow_fix))
    # NNCF draws progress bars on stdout and logs every ignored node: kept, like the export's
    # chatter, and shown only if it fails (stdout stays clean for callers that parse it)
    with quiet_native_output():
        return nncf.quantize(
            model, nncf.Dataset(crops), subset_size=len(crops), advanced_parameters=advanced,
            preset=nncf.QuantizationPreset(recipe.preset),
            fast_bias_correction=recipe.fast_bias_correction,
            model_type=nncf.ModelType(recipe.model_type) if recipe.model_type else None,
            ignored_scope=nncf.IgnoredScope(names=kept) if kept else None)


def reference_key(weights: Weights, recipe: Recipe, local_window: int) -> dict:
    return dict(model_key(weights, (recipe.crop, recipe.crop), local_window), precision="int8",
                stage="reference", recipe=recipe.as_dict(), nncf=version_of("nncf"))


def _folder(key: dict, label: str) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return cache_root() / f"{label}-{digest}"


def _publish(target: Path, key: dict, write) -> float:
    """Write a cache folder atomically: ``write(staging)`` fills a temporary folder that is
    then renamed into place (a concurrent writer that got there first wins). Seconds taken."""
    start = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staged = work / "out"
        staged.mkdir()
        write(staged)
        seconds = time.perf_counter() - start
        info = dict(key, seconds=round(seconds, 3), created=time.strftime("%Y-%m-%dT%H:%M:%S"))
        (staged / "info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        try:
            os.rename(staged, target)
        except OSError:
            if not (target / "info.json").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    prune_cache(keep=target)
    return seconds


def _reference_folder(weights: Weights, recipe: Recipe, local_window: int) -> tuple[dict, Path]:
    key = reference_key(weights, recipe, local_window)
    return key, _folder(key, f"cmfnet-int8ref-{recipe.crop}x{recipe.crop}")


def reference_cached(weights: Weights, recipe: Recipe | None = None, local_window: int = 0) -> bool:
    """Whether these weights are calibrated already (else the first int8 model calibrates)."""
    _, target = _reference_folder(weights, recipe or shipped_recipe(), local_window)
    return (target / "info.json").exists()


def ensure_reference(weights: Weights, recipe: Recipe | None = None, local_window: int = 0) -> Path:
    """The cached reference folder (``fp32.xml`` and its quantised ``int8.xml``), calibrating
    on a miss. ``recipe``: default :func:`shipped_recipe`."""
    recipe = recipe or shipped_recipe()
    key, target = _reference_folder(weights, recipe, local_window)
    if (target / "info.json").exists():
        touch(target / "info.json")
        return target
    with _calibration_lock:
        if (target / "info.json").exists():
            return target
        import openvino as ov

        fp32_xml, _, _ = ensure_model(weights, (recipe.crop, recipe.crop), local_window)

        def write(staged: Path) -> None:
            # the fp32 model it was made from goes with it: the transplant matches nodes by name
            shutil.copyfile(fp32_xml, staged / "fp32.xml")
            shutil.copyfile(fp32_xml.with_suffix(".bin"), staged / "fp32.bin")
            quantised = _quantise(core().read_model(str(staged / "fp32.xml")), weights, recipe)
            ov.save_model(quantised, str(staged / "int8.xml"), compress_to_fp16=False)

        _publish(target, key, write)
        return target


# --- each tile shape: the reference's changes onto that shape's fp32 model ------------------

def _signature(model) -> list:
    """What must match for two models to be the same network: each op's type in order, and
    the shape of every 4-D constant (the conv weights; they do not depend on the tile shape)."""
    return [(op.get_type_name(), tuple(op.get_output_shape(0)) if op.get_type_name() == "Constant"
             and len(op.get_output_shape(0)) == 4 else None) for op in model.get_ordered_ops()]


def _copy(node, inputs):
    """A new node like ``node`` (same type, version and attributes) on ``inputs``."""
    import openvino as ov
    from openvino.utils.node_factory import NodeFactory

    if node.get_type_name() == "Constant":
        return ov.op.Constant(node.get_data())  # an auto name: Constant names may clash
    version = node.get_type_info().version_id
    if version not in _factories:
        _factories[version] = NodeFactory(version)
    copy = _factories[version].create(node.get_type_name(), inputs, node.get_attributes())
    copy.set_friendly_name(node.get_friendly_name())  # NNCF's names say what each node is for
    return copy


_factories: dict[str, object] = {}


def transplant(quantised, reference, target):
    """``target`` (an fp32 model of the same network at another shape) with every change
    that turned ``reference`` into ``quantised`` made to it too; returns ``target``.

    Nodes of ``reference`` and ``target`` correspond by position in topological order
    (the graphs differ only in shape constants; checked op by op). Every input of an
    original node that ``quantised`` feeds from a new node (a FakeQuantize, int8
    weights and their scale) or from a changed constant gets a copy of that node,
    built on ``target``'s corresponding nodes.
    """
    reference_ops, target_ops = reference.get_ordered_ops(), target.get_ordered_ops()
    if _signature(reference) != _signature(target):
        raise ValueError("the fp32 models differ in structure, not only in shape: cannot transplant")
    position = {op.get_friendly_name(): i for i, op in enumerate(reference_ops)}
    changed = set()
    for op in quantised.get_ordered_ops():
        name = op.get_friendly_name()
        if op.get_type_name() == "Constant" and name in position:
            before = reference_ops[position[name]]
            if before.get_type_name() != "Constant" or not np.array_equal(before.get_data(), op.get_data()):
                changed.add(name)
    copies: dict[str, object] = {}

    def output_for(output):
        node, name = output.get_node(), output.get_node().get_friendly_name()
        if name in position and name not in changed:
            return target_ops[position[name]].output(output.get_index())
        if name not in copies:
            copies[name] = _copy(node, [output_for(i.get_source_output()) for i in node.inputs()])
        return copies[name].output(output.get_index())

    for op in quantised.get_ordered_ops():
        name = op.get_friendly_name()
        if name not in position or name in changed:
            continue
        before = reference_ops[position[name]]
        for port, given in enumerate(op.inputs()):
            source = given.get_source_output()
            was = before.input(port).get_source_output()
            same = (source.get_node().get_friendly_name() == was.get_node().get_friendly_name()
                    and source.get_index() == was.get_index()
                    and source.get_node().get_friendly_name() not in changed)
            if not same:
                target_ops[position[name]].input(port).replace_source_output(output_for(source))
    target.validate_nodes_and_infer_types()
    return target


def int8_key(weights: Weights, tile_shape: tuple[int, int], local_window: int, recipe: Recipe) -> dict:
    return dict(model_key(weights, tile_shape, local_window), precision="int8",
                recipe=recipe.as_dict(), nncf=version_of("nncf"))


def ensure_int8_model(weights: Weights, tile_shape: tuple[int, int], local_window: int = 0,
                      recipe: Recipe | None = None) -> tuple[Path, bool, float]:
    """The cached int8 IR for this tile shape: (path of the .xml, cache hit, seconds spent
    calibrating, exporting and transplanting). ``recipe``: default :func:`shipped_recipe`."""
    recipe = recipe or shipped_recipe()
    key = int8_key(weights, tile_shape, local_window, recipe)
    target = _folder(key, f"cmfnet-int8-{int(tile_shape[0])}x{int(tile_shape[1])}")
    xml = target / "model.xml"
    if xml.exists() and (target / "info.json").exists():
        touch(target / "info.json")
        return xml, True, 0.0
    start = time.perf_counter()
    import openvino as ov

    def write(staged: Path) -> None:
        for attempt in (1, 2):
            reference = ensure_reference(weights, recipe, local_window)
            fp32_xml, _, _ = ensure_model(weights, tile_shape, local_window)
            try:
                models = [core().read_model(str(path))
                          for path in (reference / "int8.xml", reference / "fp32.xml", fp32_xml)]
                break
            except RuntimeError:
                # damaged (a crash while the disk was flushing) or pruned meanwhile: make both again
                if attempt == 2:
                    raise
                shutil.rmtree(reference, ignore_errors=True)
                shutil.rmtree(fp32_xml.parent, ignore_errors=True)
        ov.save_model(transplant(*models), str(staged / "model.xml"), compress_to_fp16=False)

    _publish(target, key, write)
    return xml, False, time.perf_counter() - start


# --- weights nobody measured: their own check, once, at calibration ----------------------

#: the held-out crops other weights are checked on: one from each sample photo (the
#: calibration's round-robin), at the recipe's crop size, drawn with another seed than the
#: calibration's (int8 is checked on crops it was not fitted to). On full-size weights the
#: check costs about what calibrating on 9 crops does (seconds to tens of seconds, once).
CHECK_CROPS = 9
CHECK_SEED_OFFSET = 1000
VERDICT_FILE = "verdict.json"
#: each verdict file's figures as this process last read or wrote them. Every backend built
#: for a new tile shape asks for the verdict again; the file's path is keyed by all it
#: depends on (its reference folder: the weights' content, the recipe, which follows the
#: kind of CPU, the local window, the library versions), and only this module writes it.
_verdicts: dict[Path, dict] = {}


@dataclass(frozen=True)
class Verdict:
    """Whether these weights may run int8 under ``auto``. ``psnr_min``: int8 against fp32
    at the worst check crop (None for the bundled weights, measured by the benchmark)."""

    faithful: bool
    psnr_min: float | None = None
    crops: int = 0

    def note(self, instead: str) -> str | None:
        """One line for the user where int8 falls short; ``instead``: what runs for them."""
        if self.faithful:
            return None
        return _("int8 would be only {psnr} dB from fp32 with these weights (the bar is {bar} dB; "
                 "checked once, when they were calibrated): {instead}").format(
            psnr=f"{self.psnr_min:.1f}", bar=f"{INT8_MIN_PSNR:.0f}", instead=instead)


def measured_weights(weights: Weights) -> bool:
    """True for the bundled weights, whose int8 fidelity the benchmark measured
    (``precision.INT8_MEASURED``); read_weights has checked their sha256 against the sidecar."""
    if weights.path is None:
        return False
    try:
        return Path(weights.path).resolve().parent == BUNDLED_DIR.resolve()
    except OSError:
        return False


def _check(reference: Path, recipe: Recipe) -> dict:
    """int8 against fp32 on the check crops, each as it runs on this CPU (min and mean PSNR)."""
    from ..training.metrics import psnr

    crops = calibration_crops(CHECK_CROPS, recipe.crop, recipe.seed + CHECK_SEED_OFFSET)
    fp32 = core().compile_model(str(reference / "fp32.xml"), "CPU",
                                {"INFERENCE_PRECISION_HINT": inference_hint("fp32")})
    int8 = core().compile_model(str(reference / "int8.xml"), "CPU",
                                {"INFERENCE_PRECISION_HINT": inference_hint("int8")})
    values = [psnr(np.clip(int8(crop)[0], 0, 1), np.clip(fp32(crop)[0], 0, 1)) for crop in crops]
    return {"psnr_min": round(min(values), 2), "psnr_mean": round(float(np.mean(values)), 2),
            "crops": len(crops), "crop": recipe.crop, "seed": recipe.seed + CHECK_SEED_OFFSET,
            "bar_db": INT8_MIN_PSNR}


def int8_verdict(weights: Weights, recipe: Recipe | None = None, local_window: int = 0) -> Verdict:
    """Whether int8 is faithful enough for these weights: the bundled ones as measured;
    any others checked once after calibrating (:func:`ensure_reference`, which this runs on a
    miss), the figures kept in the reference's folder so later runs only read them."""
    if measured_weights(weights):
        return Verdict(True)
    recipe = recipe or shipped_recipe()
    reference = ensure_reference(weights, recipe, local_window)
    verdict_path = reference / VERDICT_FILE
    figures = _verdicts.get(verdict_path)
    if not _current(figures):  # not read yet in this process, or made against another bar
        with _calibration_lock:
            figures = read_verdict(verdict_path)
            if not _current(figures):
                figures = _check(reference, recipe)
                write_verdict(verdict_path, figures)
    return Verdict(figures["psnr_min"] >= INT8_MIN_PSNR, figures["psnr_min"], figures["crops"])


def _current(figures: dict | None) -> bool:
    """Whether kept figures were checked against today's bar (changing the bar checks again)."""
    return bool(figures) and figures.get("bar_db") == INT8_MIN_PSNR


def read_verdict(path: Path) -> dict | None:
    """The figures kept in a verdict file (None if there are none to read): from the file
    the first time, then as this process last read or wrote them."""
    if path not in _verdicts:
        try:
            _verdicts[path] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    return _verdicts[path]


def write_verdict(path: Path, figures: dict) -> None:
    """Keep ``figures`` in the verdict file ``path``; this process sees them at once."""
    write_atomic(path, (json.dumps(figures, indent=2) + "\n").encode(), overwrite=True)
    _verdicts[path] = figures


def int8_decision(weights: Weights, precision: str = "auto", device: str = "cpu",
                  local_window: int = 0, recipe: Recipe | None = None) -> tuple[str, str | None]:
    """The precision to run and a note for the user: ``auto``'s int8 becomes the float path
    (bf16 or fp32, :func:`~.precision.float_precision`) for weights whose check fails; int8
    asked for by name runs, with the same note. Calibrates (once per weights) where int8 is
    decided on and nothing is cached yet; anything else is decided at once."""
    resolved = resolve_precision(precision, device, weights)
    if resolved != "int8" or device != "cpu":
        return resolved, None
    verdict = int8_verdict(weights, recipe, local_window)
    if verdict.faithful:
        return "int8", None
    if precision == "auto":
        return float_precision(), verdict.note(_("running {precision} instead").format(
            precision=float_precision()))
    return "int8", verdict.note(_("running int8 as asked (auto runs {precision} for them)").format(
        precision=float_precision()))
