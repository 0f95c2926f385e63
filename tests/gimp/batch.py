# Runs inside GIMP 3 (python-fu-eval, GIMP's own Python) for tests/test_gimp.py:
# open the input, select a rectangle or an ellipse if asked to, call the CMFNet
# Restore plug-in non-interactively, dump the new layer's pixels and export the
# visible result. Parameters come from /mnt/job/params.json; the outcome goes
# to /mnt/job/result.json.
import json
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

JOB = "/mnt/job/"
params = json.load(open(JOB + "params.json"))
t0 = time.time()
img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(JOB + params["input"]))
src = img.get_layers()[0]
if params.get("select"):
    shape, (x, y, w, h) = params["select"]
    select = img.select_rectangle if shape == "rectangle" else img.select_ellipse
    select(Gimp.ChannelOps.REPLACE, x, y, w, h)
proc = Gimp.get_pdb().lookup_procedure("plug-in-cmfnet-restore")
if proc is None:
    raise RuntimeError("plug-in-cmfnet-restore is not registered")
cfg = proc.create_config()
interactive = params.get("interactive", False)
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE if interactive else Gimp.RunMode.NONINTERACTIVE)
cfg.set_property("image", img)
cfg.set_core_object_array("drawables", [src])
if params.get("task"):  # else the procedure's default (the interactive test checks it)
    cfg.set_property("task", params["task"])
cfg.set_property("weights", params.get("weights", ""))
res = proc.run(cfg)
status = res.index(0)
if status != Gimp.PDBStatusType.SUCCESS:
    raise RuntimeError("plug-in returned %s: %s" % (status, Gimp.get_pdb().get_last_error()))
plugin_seconds = time.time() - t0

layers = img.get_layers()
info = {"layers": [layer.get_name() for layer in layers], "plugin_seconds": round(plugin_seconds, 2),
        "menu_label": proc.get_menu_label()}
if len(layers) > 1:  # else the plug-in added nothing (Automatic found the photo fine)
    new = layers[0]
    w, h = new.get_width(), new.get_height()
    fmt = params["raw_format"]
    raw = new.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, fmt, Gegl.AbyssPolicy.CLAMP)
    open(JOB + "out.raw", "wb").write(bytes(raw))
    img.remove_layer(src)  # export exactly the new layer
    Gimp.Selection.none(img)
    if not Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, img, Gio.File.new_for_path(JOB + "out.png"), None):
        raise RuntimeError("export failed: %s" % Gimp.get_pdb().get_last_error())
    info.update(has_alpha=bool(new.has_alpha()), size=[w, h],
                offsets=list(new.get_offsets())[1:], raw_format=fmt)
json.dump(info, open(JOB + "result.json", "w"))
print("CMFNET-GIMP-RESULT " + json.dumps(info))
img.delete()
