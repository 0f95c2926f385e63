#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters ▸ Enhance ▸ CMFNet Restore…

Restores the selected layer(s) with CMFNet: Automatic (the engine finds out
whether the layer is blurry, hazy or rain-spotted), deblur, dehaze or
deraindrop. GIMP's own Python cannot hold PaddlePaddle, so the pixels go to
the project's Python in a subprocess (see cmfnet_gimp_bridge.py, beside this
file):

1. the layer's pixels are written to a temporary PNG (8 or 16 bit as the
   image's precision, grey or RGB as the layer, with alpha when it has one).
   With a selection, only its bounding box plus a margin of context
   (``bridge.CONTEXT_MARGIN``, clipped to the layer) is sent;
2. ``<project python> -m cmfnet_core.cli restore IN --out-dir OUT --task T
   --progress-lines`` runs; its ``PROGRESS done total`` lines drive GIMP's
   progress bar. Cancelling the progress makes GIMP stop this plug-in; the
   engine process is tied to it (Linux: PR_SET_PDEATHSIG) and stops too, and
   the image is left untouched;
3. the result comes back as a new layer named after the task that ran
   ("Deblur"), above the source layer at the same offsets, in one undo group.
   The engine passes alpha through, so the new layer keeps the source's alpha.
   With a selection the new layer is a copy of the source into which the
   result is merged through the selection mask, as GIMP's own filters do
   (shadow buffer, ``merge_shadow``): outside the selection it is the source,
   byte for byte. A layer that Automatic finds fine gets no new layer, and a
   message says so.

PDB procedure ``plug-in-cmfnet-restore``: run-mode, image, drawables, then
``task`` (auto | deblur | dehaze | deraindrop), ``tile`` (0 = engine default),
``overlap`` (-1 = engine default), ``weights`` ("" = the configured/default
weights; a file restores one task, so not with auto).

Installed by install.py as ``<GIMP profile>/plug-ins/cmfnet-restore/`` with
``cmfnet-restore.json`` naming the project's Python.
"""

import os
import shutil
import sys
import tempfile

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio, GLib, GObject  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import cmfnet_gimp_bridge as bridge  # noqa: E402

PROC_NAME = "plug-in-cmfnet-restore"
BINARY = "cmfnet-restore"
RW = GObject.ParamFlags.READWRITE
_8BIT = {Gimp.Precision.U8_LINEAR, Gimp.Precision.U8_NON_LINEAR, Gimp.Precision.U8_PERCEPTUAL}


def _error(procedure, message, status=Gimp.PDBStatusType.EXECUTION_ERROR):
    return procedure.new_return_values(status, GLib.Error.new_literal(
        GLib.quark_from_string("cmfnet-restore"), message, 0))


def _show_dialog(procedure, config):
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi  # noqa: PLC0415

    GimpUi.init(BINARY)
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "CMFNet Restore")
    dialog.fill(["task", "tile", "overlap", "weights"])
    _add_weights_note(dialog)
    ok = dialog.run()
    dialog.destroy()
    return ok


def _add_weights_note(dialog):
    """Below the options: which weights each task uses, and how to get the authors'.
    Best effort: the dialog opens without it if the project's Python cannot be asked."""
    try:
        gi.require_version("Gtk", "3.0")
        from gi.repository import Gtk  # noqa: PLC0415

        cfg = bridge.load_config(HERE)
        note = bridge.weights_note(cfg, bridge.AUTO_TASK, bridge.installed_weights(cfg))
        label = Gtk.Label(label=note, xalign=0.0)
        label.set_line_wrap(True)
        label.set_max_width_chars(60)
        label.set_selectable(True)
        dialog.get_content_area().pack_end(label, False, False, 6)
        label.show()
    except Exception:  # noqa: BLE001 (never keep the dialog from opening)
        pass


def _export_region(layer, box, path, sixteen):
    """Write the layer's pixels in ``box`` (perceptual values: Y'/Y'A or R'G'B'/R'G'B'A,
    8 or 16 bit, as the image's precision) to a PNG the engine reads."""
    alpha = layer.has_alpha()
    gray = layer.is_gray()
    model = ("Y'" if gray else "R'G'B'") + ("A" if alpha else "")
    fmt = "{} {}".format(model, "u16" if sixteen else "u8")
    channels = (1 if gray else 3) + (1 if alpha else 0)
    rect = Gegl.Rectangle.new(box.x, box.y, box.width, box.height)
    pixels = layer.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP)
    bridge.write_png(path, box.width, box.height, channels, 16 if sixteen else 8, bytes(pixels))


def _region(image, layer):
    """(box to restore, whether a selection limits it); box None: the selection misses
    the layer. ``mask_intersect`` gives the selection's bounds in layer pixels."""
    whole = bridge.Box(0, 0, layer.get_width(), layer.get_height())
    if Gimp.Selection.is_empty(image):
        return whole, False
    touches, x, y, width, height = layer.mask_intersect()
    if not touches:
        return None, True
    return bridge.context_box(bridge.Box(x, y, width, height), whole.width, whole.height), True


def _add_result(image, layer, path, label, box, selected):
    """The restored pixels as a new layer above ``layer``. Without a selection it is
    the engine's result itself. With one, a copy of ``layer`` gets the result in
    ``box`` through its shadow buffer, and ``merge_shadow`` blends it in through the
    selection mask (GIMP's own filters work so): pixels outside stay the source's."""
    loaded = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(path))
    parent, position = layer.get_parent(), image.get_item_position(layer)
    if not selected:
        loaded.set_name(label)
        image.insert_layer(loaded, parent, position)
        offsets = layer.get_offsets()
        loaded.set_offsets(offsets[-2], offsets[-1])
        return loaded
    new = layer.copy()
    new.set_name(label)
    image.insert_layer(new, parent, position)
    shadow = new.get_shadow_buffer()
    loaded.get_buffer().copy(Gegl.Rectangle.new(0, 0, box.width, box.height),
                             Gegl.AbyssPolicy.NONE, shadow,
                             Gegl.Rectangle.new(box.x, box.y, box.width, box.height))
    shadow.flush()
    new.merge_shadow(True)
    new.update(box.x, box.y, box.width, box.height)
    loaded.delete()  # never inserted: only its pixels were wanted
    return new


def run(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not _show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())

    layers = [d for d in drawables if isinstance(d, Gimp.Layer) and not d.is_group()]
    if not layers:
        return _error(procedure, "CMFNet Restore works on layers: select a (non-group) layer.")
    task = config.get_property("task")
    label = bridge.TASK_LABELS.get(task, task)  # for the progress bar; the layer gets the task that ran
    tile = config.get_property("tile")
    overlap = config.get_property("overlap")
    weights = config.get_property("weights") or None
    sixteen = image.get_precision() not in _8BIT

    tmp = tempfile.mkdtemp(prefix="cmfnet-gimp-")
    try:
        cfg = bridge.load_config(HERE)
        regions = [(layer,) + _region(image, layer) for layer in layers]
        regions = [(layer, box, selected) for layer, box, selected in regions if box is not None]
        if not regions:
            return _error(procedure, "The selection does not touch the selected layer(s).")
        results, untouched = [], []
        n = len(regions)
        for i, (layer, box, selected) in enumerate(regions):
            src = os.path.join(tmp, "in-{}.png".format(i))
            out_dir = os.path.join(tmp, "out-{}".format(i))
            os.mkdir(out_dir)
            _export_region(layer, box, src, sixteen)
            cmd = bridge.engine_command(cfg, src, out_dir, task, tile=tile, overlap=overlap,
                                        weights=weights)
            Gimp.progress_init("CMFNet {}: {}".format(label, layer.get_name()))
            Gimp.progress_update(i / n)

            def on_progress(done, total, i=i):
                Gimp.progress_update((i + done / total) / n)

            lines = bridge.run_engine(cmd, on_progress, cwd=cfg.project_dir)
            result = bridge.engine_result(lines, src)
            if result.path is None and task != bridge.AUTO_TASK:
                raise bridge.BridgeError("CMFNet Restore wrote no result ({})".format(out_dir))
            if result.path is None:
                untouched.append("{}: {}".format(layer.get_name(), result.message))
            else:
                results.append((layer, result, box, selected))
        Gimp.progress_update(1.0)

        image.undo_group_start()
        try:
            for layer, result, box, selected in results:
                _add_result(image, layer, result.path,
                            bridge.TASK_LABELS.get(result.task, "Restored"), box, selected)
        finally:
            image.undo_group_end()
        Gimp.progress_end()
        unsure = ["{}: {}, so {}".format(layer.get_name(), result.message,
                                         bridge.TASK_LABELS.get(result.task, result.task))
                  for layer, result, _, _ in results if result.message]
        if unsure:  # restored with the likely task: say it was a guess, and the runner-up
            Gimp.message("CMFNet Restore was not sure ({}); pick the task by hand to change it."
                         .format("; ".join(unsure)))
        if untouched:  # Automatic found nothing to do there: say so, the image shows nothing
            Gimp.message("CMFNet Restore left {} as it is ({}).".format(
                "these layers" if len(untouched) > 1 else "the layer", "; ".join(untouched)))
        Gimp.displays_flush()
    except bridge.Cancelled:
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    except bridge.BridgeError as exc:
        return _error(procedure, str(exc))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


class CMFNetRestore(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC_NAME]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        p = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        p.set_image_types("RGB*, GRAY*")
        p.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                               | Gimp.ProcedureSensitivityMask.DRAWABLES)
        p.set_menu_label("CMFNet _Restore…")
        p.add_menu_path("<Image>/Filters/Enhance")
        p.set_documentation(
            "Restore blurry, hazy or rain-spotted photos with CMFNet",
            "Runs the CMFNet Restore engine on the selected layers (in the project's own "
            "Python, as a subprocess) and adds the result as a new layer named after the "
            "task, keeping the alpha channel. With a selection, only the selected pixels "
            "change.",
            name)
        p.set_attribution("CMFNet Restore contributors", "CMFNet Restore contributors", "2026")
        choice = Gimp.Choice.new()
        for i, t in enumerate(bridge.CHOICES):
            choice.add(t, i, bridge.TASK_LABELS[t], "")
        p.add_choice_argument("task", "_Task",
                              "Restoration task (Automatic: what the layer needs)", choice,
                              bridge.AUTO_TASK, RW)
        p.add_int_argument("tile", "T_ile size",
                           "Tile size in pixels (0 = the engine's default)", 0, 8192, 0, RW)
        p.add_int_argument("overlap", "Tile o_verlap",
                           "Tile overlap in pixels (-1 = the engine's default)", -1, 1024, -1, RW)
        p.add_string_argument("weights", "_Weights file",
                              "Weights file (empty = the installed weights)", "", RW)
        return p


Gimp.main(CMFNetRestore.__gtype__, sys.argv)
