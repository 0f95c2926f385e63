#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters ▸ Enhance ▸ CMFNet Restore…

Restores the selected layer(s) with CMFNet (deblur, dehaze or deraindrop).
GIMP's own Python cannot hold PaddlePaddle, so the pixels go to the project's
Python in a subprocess (see cmfnet_gimp_bridge.py, beside this file):

1. the layer's pixels are written to a temporary PNG (8 or 16 bit as the
   image's precision, grey or RGB as the layer, with alpha when it has one);
2. ``<project python> -m cmfnet_core.cli restore IN -o OUT --task T
   --progress-lines`` runs; its ``PROGRESS done total`` lines drive GIMP's
   progress bar. Cancelling the progress makes GIMP stop this plug-in; the
   engine process is tied to it (Linux: PR_SET_PDEATHSIG) and stops too, and
   the image is left untouched;
3. the result comes back as a new layer named after the task ("Deblur"),
   above the source layer at the same offsets, in one undo group. The engine
   passes alpha through, so the new layer keeps the source's alpha.

PDB procedure ``plug-in-cmfnet-restore``: run-mode, image, drawables, then
``task`` (deblur | dehaze | deraindrop), ``tile`` (0 = engine default),
``overlap`` (-1 = engine default), ``weights`` ("" = the configured/default
weights).

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
    ok = dialog.run()
    dialog.destroy()
    return ok


def _export_layer(layer, path, sixteen):
    """Write the layer's pixels (perceptual values: Y'/Y'A or R'G'B'/R'G'B'A, 8 or
    16 bit, as the image's precision) to a PNG the engine reads; return (w, h)."""
    w, h = layer.get_width(), layer.get_height()
    alpha = layer.has_alpha()
    gray = layer.is_gray()
    model = ("Y'" if gray else "R'G'B'") + ("A" if alpha else "")
    fmt = "{} {}".format(model, "u16" if sixteen else "u8")
    channels = (1 if gray else 3) + (1 if alpha else 0)
    rect = Gegl.Rectangle.new(0, 0, w, h)
    pixels = layer.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.CLAMP)
    bridge.write_png(path, w, h, channels, 16 if sixteen else 8, bytes(pixels))
    return w, h


def run(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not _show_dialog(procedure, config):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())

    layers = [d for d in drawables if isinstance(d, Gimp.Layer) and not d.is_group()]
    if not layers:
        return _error(procedure, "CMFNet Restore works on layers: select a (non-group) layer.")
    task = config.get_property("task")
    label = bridge.TASK_LABELS.get(task, task)
    tile = config.get_property("tile")
    overlap = config.get_property("overlap")
    weights = config.get_property("weights") or None
    sixteen = image.get_precision() not in _8BIT

    tmp = tempfile.mkdtemp(prefix="cmfnet-gimp-")
    try:
        cfg = bridge.load_config(HERE)
        results = []
        n = len(layers)
        for i, layer in enumerate(layers):
            src = os.path.join(tmp, "in-{}.png".format(i))
            dst = os.path.join(tmp, "out-{}.png".format(i))
            _export_layer(layer, src, sixteen)
            cmd = bridge.engine_command(cfg, src, dst, task, tile=tile, overlap=overlap,
                                        weights=weights)
            Gimp.progress_init("CMFNet {}: {}".format(label, layer.get_name()))
            Gimp.progress_update(i / n)

            def on_progress(done, total, i=i):
                Gimp.progress_update((i + done / total) / n)

            bridge.run_engine(cmd, on_progress, cwd=cfg.project_dir)
            if not os.path.isfile(dst):
                raise bridge.BridgeError("CMFNet Restore wrote no result ({})".format(dst))
            results.append((layer, dst))
        Gimp.progress_update(1.0)

        image.undo_group_start()
        try:
            for layer, dst in results:
                new = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image,
                                           Gio.File.new_for_path(dst))
                new.set_name(label)
                image.insert_layer(new, layer.get_parent(), image.get_item_position(layer))
                offsets = layer.get_offsets()
                new.set_offsets(offsets[-2], offsets[-1])
        finally:
            image.undo_group_end()
        Gimp.progress_end()
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
            "task, keeping the alpha channel.",
            name)
        p.set_attribution("CMFNet Restore contributors", "CMFNet Restore contributors", "2026")
        choice = Gimp.Choice.new()
        for i, t in enumerate(bridge.TASKS):
            choice.add(t, i, bridge.TASK_LABELS[t], "")
        p.add_choice_argument("task", "_Task", "Restoration task", choice, "deblur", RW)
        p.add_int_argument("tile", "T_ile size",
                           "Tile size in pixels (0 = the engine's default)", 0, 8192, 0, RW)
        p.add_int_argument("overlap", "Tile o_verlap",
                           "Tile overlap in pixels (-1 = the engine's default)", -1, 1024, -1, RW)
        p.add_string_argument("weights", "_Weights file",
                              "Weights file (empty = the installed weights)", "", RW)
        return p


Gimp.main(CMFNetRestore.__gtype__, sys.argv)
