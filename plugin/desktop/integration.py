"""Install and remove the per-user desktop integration of CMFNet Restore.

(Longer than most modules, about 730 lines: it is the file formats of four desktops,
each a short section over one list of entries and one manifest, changed together when
an entry changes; and it must run by path with only the standard library.)

``install.py`` calls::

    from plugin.desktop.integration import install_integrations, uninstall_integrations
    report = install_integrations(python_exe, project_dir)   # after the venv is ready
    report = uninstall_integrations()                        # install.py --uninstall

Everywhere there is one entry "Restore" that finds out what each photo needs
(blur, haze, raindrops or nothing: ``--task auto``) and saves the restored copy
beside it, and a submenu "CMFNet Restore ▸" with the tasks themselves: "Deblur…"
(opens the app) and "Deblur and save copy", and so on.

What gets written (all per user, no root):

Linux / BSD (XDG; ``$XDG_DATA_HOME`` defaults to ``~/.local/share``)
  * ``$XDG_DATA_HOME/applications/cmfnet-restore.desktop`` - an application
    entry with ``MimeType=`` (so "Open With CMFNet Restore" works) and
    ``Actions=`` for every entry.
  * ``$XDG_DATA_HOME/nautilus/scripts/Restore`` and
    ``$XDG_DATA_HOME/nautilus/scripts/CMFNet Restore/<item>`` - Nautilus scripts.
  * ``$XDG_DATA_HOME/nemo/actions/cmfnet-restore-<task>-<mode>.nemo_action``.
  * ``$XDG_DATA_HOME/kio/servicemenus/cmfnet-restore-auto.desktop`` (top level)
    and ``cmfnet-restore.desktop`` (the submenu) - KDE Dolphin service menus
    (executable, as KF >= 5.85 wants).
Windows
  * ``HKCU\\Software\\Classes\\SystemFileAssociations\\image\\shell\\CMFNetRestore``
    (the "Restore" verb) and ``...\\CMFNetRestoreTasks`` (a cascading menu),
    on image files (written with ``winreg``).
macOS
  * ``~/Library/Services/CMFNet Restore.workflow`` and
    ``~/Library/Services/CMFNet Restore - <Item>.workflow`` - Quick Actions
    (Automator "Run Shell Script" bundles; generated, not tested on a Mac).
Every platform
  * the GIMP 3 plug-in, see :mod:`plugin.gimp.installer`.

Every entry runs ``<project python> <project>/plugin/desktop/restore_here.py
--task T (--open | --save) FILES`` (T may be ``auto``), so it works from a
desktop session without an activated venv. Every path written (and every
directory created, and every registry key) is recorded in a manifest,
``<user data dir>/cmfnet-restore/integrations.json``; uninstalling removes
exactly those and nothing else.

This module uses only the standard library: ``install.py`` may import it
from a Python that is not the project's.
"""

from __future__ import annotations

import json
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath

if __package__ in (None, ""):  # run by path: the checkout this file is in holds the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from plugin.gimp import installer as gimp_installer  # noqa: E402
from plugin.install_plan import PlannedFile, replace_file  # noqa: E402

APP_ID = "cmfnet-restore"
APP_NAME = "CMFNet Restore"
# copies of cmfnet_core.tasks (TASKS, AUTO_TASK, TASK_TITLES) (this module cannot import
# the package, see plugin.install_plan); tests/test_desktop_integration.py keeps them equal
TASKS = ("deblur", "dehaze", "deraindrop")
AUTO_TASK = "auto"
TASK_LABELS = {"deblur": "Deblur", "dehaze": "Dehaze", "deraindrop": "Deraindrop"}
MODES = ("open", "save")
TOP_LABEL = "Restore"  # the one-click entry: the automatic choice, saved beside
SUBMENU = APP_NAME     # the tasks themselves; not "Restore", which is the entry above
AUTO_ITEM = (AUTO_TASK, "save")
TASK_ITEMS = tuple((t, m) for m in MODES for t in TASKS)
ITEMS = (AUTO_ITEM,) + TASK_ITEMS  # (task, mode) of every entry, in menu order
# image types the engine reads (copies of cmfnet_core.imageio.READABLE, kept equal by
# tests/test_desktop_integration.py): JPEG, PNG, TIFF, BMP, WebP, GIF (its first frame)
MIME_TYPES = ("image/jpeg", "image/png", "image/tiff", "image/bmp", "image/webp", "image/gif")
EXTENSIONS = ("jpg", "jpeg", "jpe", "png", "tif", "tiff", "bmp", "webp", "gif")
MANIFEST_NAME = "integrations.json"
REGISTRY_SHELL = r"Software\Classes\SystemFileAssociations\image\shell"
REGISTRY_ROOT = REGISTRY_SHELL + r"\CMFNetRestore"           # the "Restore" verb
REGISTRY_MENU = REGISTRY_SHELL + r"\CMFNetRestoreTasks"      # the cascading task menu

RUNNER_RELPATH = Path("plugin") / "desktop" / "restore_here.py"


def item_label(task: str, mode: str) -> str:
    """Menu text of one entry: "Restore" (automatic, saved beside), "Deblur…" opens the
    app, "Deblur and save copy" writes beside."""
    if (task, mode) == AUTO_ITEM:
        return TOP_LABEL
    return f"{TASK_LABELS[task]}…" if mode == "open" else f"{TASK_LABELS[task]} and save copy"


def item_id(task: str, mode: str) -> str:
    return f"{task}-{mode}"


def item_comment(task: str, mode: str) -> str:
    if (task, mode) == AUTO_ITEM:
        return ("Find out whether the photo is blurry, hazy or rain-spotted and save the "
                "restored copy beside it as NAME.TASK.EXT")
    if mode == "open":
        return f"Open the photo in {APP_NAME} with {task} selected"
    return f"Restore ({task}) straight to NAME.{task}.EXT beside the photo"


# --------------------------------------------------------------------------- places

def user_data_dir(platform: str | None = None) -> Path:
    """Where the manifest lives (``$XDG_DATA_HOME/cmfnet-restore`` on Linux)."""
    platform = platform or sys.platform
    if platform == "win32":
        return Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming") / APP_ID
    if platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_ID
    return xdg_data_home() / APP_ID


def xdg_data_home() -> Path:
    value = os.environ.get("XDG_DATA_HOME", "")
    return Path(value) if os.path.isabs(value) else Path.home() / ".local" / "share"


def manifest_path(platform: str | None = None) -> Path:
    return user_data_dir(platform) / MANIFEST_NAME


# --------------------------------------------------------------------------- quoting

def desktop_exec_arg(arg: str) -> str:
    """Quote one argument for a desktop-entry ``Exec`` value (already string-escaped).

    Desktop Entry spec: an argument with reserved characters goes in double
    quotes, inside which ``"`` `` ` `` ``$`` ``\\`` are backslash-escaped; a
    literal ``%`` is ``%%``; and the whole value is then a ``string`` whose
    backslashes are escaped again.
    """
    arg = arg.replace("%", "%%")
    reserved = set(" \t\n\"'\\><~|&;$*?#()`=")
    if arg and not (set(arg) & reserved):
        quoted = arg
    else:
        quoted = '"' + "".join("\\" + c if c in '"`$\\' else c for c in arg) + '"'
    return keyfile_escape(quoted)


def keyfile_escape(value: str) -> str:
    """Escape a value for a GKeyFile / desktop-entry ``string`` (``\\``, newline, tab)."""
    return (value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
            .replace("\r", "\\r"))


def sh_quote(arg: str) -> str:
    return shlex.quote(arg)


def windows_quote(arg: str) -> str:
    """Quote for a Windows command line (CommandLineToArgvW rules)."""
    if arg and not any(c in arg for c in ' \t"'):
        return arg
    out, backslashes = ['"'], 0
    for c in arg:
        if c == "\\":
            backslashes += 1
            continue
        if c == '"':
            out.append("\\" * (2 * backslashes + 1) + '"')
        else:
            out.append("\\" * backslashes + c)
        backslashes = 0
    out.append("\\" * (2 * backslashes) + '"')
    return "".join(out)


# --------------------------------------------------------------------------- commands

@dataclass(frozen=True)
class Target:
    """What every entry runs: the project's interpreter and the runner script."""

    python: str
    project_dir: str

    @property
    def runner(self) -> str:
        return str(Path(self.project_dir) / RUNNER_RELPATH)

    def argv(self, task: str | None, mode: str) -> list[str]:
        """Command line without the files."""
        args = [self.python, self.runner]
        if task:
            args += ["--task", task]
        return args + ["--open" if mode == "open" else "--save"]

    def icon(self) -> str:
        """An icon for the entries: the project's own if it ships one, else a themed name."""
        # resources/ in a checkout, the package cmfnet_resources in an install (cmfnet_core.bundled)
        for folder in ("resources", "cmfnet_resources"):
            for name in ("cmfnet-restore.svg", "cmfnet-restore.png", "app.svg", "app.png"):
                p = Path(self.project_dir) / folder / "icons" / name
                if p.is_file():
                    return str(p)
        return "image-x-generic"


def desktop_exec(target: Target, task: str | None, mode: str, field_code: str = "%F") -> str:
    return " ".join(desktop_exec_arg(a) for a in target.argv(task, mode)) + " " + field_code


# --------------------------------------------------------------------------- Linux files

def _entry_lines(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{k}={v}" for k, v in pairs]


def freedesktop_entry(target: Target) -> str:
    """The application entry: "Open With" for images, plus one action per entry."""
    actions = [item_id(t, m) for t, m in ITEMS]
    lines = ["[Desktop Entry]"] + _entry_lines([
        ("Type", "Application"),
        ("Version", "1.4"),
        ("Name", APP_NAME),
        ("GenericName", "Photo Restoration"),
        ("Comment", "Remove blur, haze or raindrops from photos with CMFNet"),
        ("Icon", keyfile_escape(target.icon())),
        ("Exec", desktop_exec(target, None, "open")),
        ("TryExec", keyfile_escape(target.python)),
        ("Terminal", "false"),
        ("StartupNotify", "true"),
        ("Categories", "Graphics;Photography;"),
        ("Keywords", "deblur;dehaze;derain;raindrop;restore;photo;sharpen;"),
        ("MimeType", ";".join(MIME_TYPES) + ";"),
        ("Actions", ";".join(actions) + ";"),
    ])
    return "\n".join(lines + _action_sections(target, ITEMS)) + "\n"


def _action_sections(target: Target, items) -> list[str]:
    """One ``[Desktop Action TASK-MODE]`` group per entry in ``items``."""
    lines = []
    for t, m in items:
        lines += ["", f"[Desktop Action {item_id(t, m)}]"] + _entry_lines([
            ("Name", item_label(t, m)),
            ("Icon", keyfile_escape(target.icon())),
            ("Exec", desktop_exec(target, t, m)),
        ])
    return lines


def dolphin_service_menu(target: Target, top_level: bool = False) -> str:
    """A KDE service menu on images: with ``top_level``, the one "Restore" entry at the top
    of the context menu (``X-KDE-Priority=TopLevel``); else the submenu "CMFNet Restore ▸
    Deblur… / … / Deblur and save copy / …" (``X-KDE-Submenu`` applies to a whole file,
    hence two files).

    ``Type=Application`` (with ``NoDisplay=true``) rather than the customary
    ``Type=Service``: KIO (KFileItemActions, KF 5.85+ and KF6) does not look at
    ``Type`` for files in ``kio/servicemenus``; it reads ``MimeType``,
    ``Actions``, ``X-KDE-Priority`` and ``X-KDE-Submenu`` and needs the file
    executable. With ``Service``, ``desktop-file-validate`` rejects ``MimeType``/``Actions``.
    """
    items = (AUTO_ITEM,) if top_level else TASK_ITEMS
    placement = ("X-KDE-Priority", "TopLevel") if top_level else ("X-KDE-Submenu", SUBMENU)
    lines = ["[Desktop Entry]"] + _entry_lines([
        ("Type", "Application"),
        ("Version", "1.4"),
        ("Name", APP_NAME),
        ("Icon", keyfile_escape(target.icon())),
        ("Exec", desktop_exec(target, None, "open")),
        ("NoDisplay", "true"),
        ("MimeType", ";".join(MIME_TYPES) + ";"),
        placement,
        ("Actions", ";".join(item_id(t, m) for t, m in items) + ";"),
    ])
    return "\n".join(lines + _action_sections(target, items)) + "\n"


def nautilus_script(target: Target, task: str, mode: str) -> str:
    """A Nautilus script. Nautilus runs it with the selection as arguments (relative to
    the working directory it sets) and in NAUTILUS_SCRIPT_SELECTED_FILE_PATHS; the
    runner reads the variable when there are no arguments (remote folders)."""
    cmd = " ".join(sh_quote(a) for a in target.argv(task, mode))
    return (
        "#!/bin/sh\n"
        f"# {APP_NAME}: {item_label(task, mode)}\n"
        "# Installed by install.py; removed by install.py --uninstall.\n"
        f'exec {cmd} -- "$@"\n'
    )


def nemo_action(target: Target, task: str, mode: str) -> str:
    """A Nemo action. Nemo substitutes the selection into ``Exec`` and splits the line
    like a shell (g_shell_parse_argv; no shell runs). ``%U`` (file URIs, with
    Quote=double) rather than ``%F``: URIs are percent-encoded, so a file name
    holding a double quote or a backslash cannot break the quoting; the runner
    turns ``file://`` URIs back into paths. ``UriScheme=file``: local folders only."""
    exec_line = " ".join(_nemo_arg(a) for a in target.argv(task, mode)) + " -- %U"
    # Nemo actions have no submenus: the task entries carry the submenu's name instead
    name = item_label(task, mode) if (task, mode) == AUTO_ITEM else \
        f"{SUBMENU}: {item_label(task, mode)}"
    lines = ["[Nemo Action]"] + _entry_lines([
        ("Name", name),
        ("Comment", item_comment(task, mode).replace("%", "%%")),
        ("Exec", keyfile_escape(exec_line)),
        ("Icon-Name", keyfile_escape(target.icon())),
        ("Selection", "notnone"),
        ("Extensions", ";".join(EXTENSIONS) + ";"),
        ("UriScheme", "file"),
        ("Quote", "double"),
    ])
    return "\n".join(lines) + "\n"


def _nemo_arg(arg: str) -> str:
    return sh_quote(arg).replace("%", "%%")


# --------------------------------------------------------------------------- Windows

def windows_registry_entries(target: Target) -> list[tuple[str, str, str]]:
    """``(key under HKCU, value name, REG_SZ value)`` for the Explorer entries: the
    "Restore" verb and the cascading "CMFNet Restore" menu of tasks.

    ``SystemFileAssociations\\image`` applies to every file whose PerceivedType
    is image. An empty ``SubCommands`` plus a ``shell`` subkey makes a cascading
    menu (Windows 7+). Explorer starts one process per selected file for a
    ``%1`` verb; ``MultiSelectModel=Player`` keeps the verb for large selections.
    ``pythonw.exe`` (beside python.exe) avoids a console window.
    """
    py = PureWindowsPath(target.python)
    pyw = py.with_name("pythonw.exe") if py.name.lower() == "python.exe" else py
    runner = str(PureWindowsPath(target.project_dir, *RUNNER_RELPATH.parts))
    icon = target.icon() if target.icon().endswith((".ico", ".exe")) else ""

    def command(task: str, mode: str) -> str:
        argv = [str(pyw), runner] + target.argv(task, mode)[2:]
        return " ".join(windows_quote(a) for a in argv) + ' "%1"'

    entries = [
        (REGISTRY_ROOT, "MUIVerb", TOP_LABEL),
        (REGISTRY_ROOT, "Icon", icon),
        (REGISTRY_ROOT, "MultiSelectModel", "Player"),
        (REGISTRY_ROOT + r"\command", "", command(*AUTO_ITEM)),
        (REGISTRY_MENU, "MUIVerb", SUBMENU),
        (REGISTRY_MENU, "SubCommands", ""),
        (REGISTRY_MENU, "Icon", icon),
        (REGISTRY_MENU, "MultiSelectModel", "Player"),
    ]
    for n, (t, m) in enumerate(TASK_ITEMS, 1):
        key = REGISTRY_MENU + rf"\shell\{n:02d}-{t}-{m}"
        entries += [
            (key, "MUIVerb", item_label(t, m)),
            (key, "MultiSelectModel", "Player"),
            (key + r"\command", "", command(t, m)),
        ]
    return [e for e in entries if not (e[1] == "Icon" and not e[2])]


def write_windows_registry(entries, winreg_mod=None) -> list[str]:
    """Write ``entries`` under HKEY_CURRENT_USER; return the keys created (outermost first)."""
    if winreg_mod is None:
        import winreg as winreg_mod  # noqa: PLC0415 (Windows only)
    keys: list[str] = []
    for key, name, value in entries:
        with winreg_mod.CreateKeyEx(winreg_mod.HKEY_CURRENT_USER, key, 0,
                                    winreg_mod.KEY_WRITE) as handle:
            winreg_mod.SetValueEx(handle, name, 0, winreg_mod.REG_SZ, value)
        if key not in keys:
            keys.append(key)
    return keys


def delete_windows_registry_tree(key: str, winreg_mod=None) -> bool:
    """Delete ``HKCU\\key`` and everything below it; False if it was not there."""
    if winreg_mod is None:
        import winreg as winreg_mod  # noqa: PLC0415
    try:
        handle = winreg_mod.OpenKey(winreg_mod.HKEY_CURRENT_USER, key, 0,
                                    winreg_mod.KEY_READ | winreg_mod.KEY_WRITE)
    except OSError:
        return False
    with handle:
        subkeys = []
        i = 0
        while True:
            try:
                subkeys.append(winreg_mod.EnumKey(handle, i))
            except OSError:
                break
            i += 1
    for sub in subkeys:
        delete_windows_registry_tree(key + "\\" + sub, winreg_mod)
    winreg_mod.DeleteKey(winreg_mod.HKEY_CURRENT_USER, key)
    return True


# --------------------------------------------------------------------------- macOS

def macos_workflow_files(target: Target, task: str, mode: str) -> dict[str, bytes]:
    """``{relative path: bytes}`` of one Automator Quick Action bundle (Finder, images).

    NOT TESTED ON A MAC (none at hand): the bundle follows the layout Automator
    saves for a "Run Shell Script" Quick Action that receives image files in
    Finder and passes them as arguments. If macOS refuses it, make the same
    Quick Action by hand (plugin/desktop/README.md) with the shell command
    in ``macos_shell_command``.
    """
    title = macos_title(task, mode)
    info = {
        "CFBundleName": title,
        "CFBundleIdentifier": f"org.cmfnet-restore.{task}-{mode}",
        "NSServices": [{
            "NSMenuItem": {"default": title},
            "NSMessage": "runWorkflowAsService",
            "NSRequiredContext": {"NSApplicationIdentifier": "com.apple.finder"},
            "NSSendFileTypes": ["public.image"],
        }],
    }
    action = {
        "action": {
            "AMAccepts": {"Container": "List", "Optional": True,
                          "Types": ["com.apple.cocoa.string"]},
            "AMActionVersion": "2.0.3",
            "AMApplication": ["Automator"],
            "AMParameterProperties": {"COMMAND_STRING": {}, "CheckedForUserDefaultShell": {},
                                      "inputMethod": {}, "shell": {}, "source": {}},
            "AMProvides": {"Container": "List", "Types": ["com.apple.cocoa.string"]},
            "ActionBundlePath": "/System/Library/Automator/Run Shell Script.action",
            "ActionName": "Run Shell Script",
            "ActionParameters": {
                "COMMAND_STRING": macos_shell_command(target, task, mode),
                "CheckedForUserDefaultShell": True,
                "inputMethod": 1,  # pass input as arguments
                "shell": "/bin/sh",
                "source": "",
            },
            "BundleIdentifier": "com.apple.RunShellScript",
            "CFBundleVersion": "2.0.3",
            "CanShowSelectedItemsWhenRun": False,
            "CanShowWhenRun": True,
            "Category": ["AMCategoryUtilities"],
            "Class Name": "RunShellScriptAction",
            "InputUUID": "0B5F1D7E-6A2C-4B8E-9E0A-000000000001",
            "Keywords": ["Shell", "Script", "Command", "Run", "Unix"],
            "OutputUUID": "0B5F1D7E-6A2C-4B8E-9E0A-000000000002",
            "UUID": "0B5F1D7E-6A2C-4B8E-9E0A-000000000003",
            "UnlocalizedApplications": ["Automator"],
            "arguments": {},
            "isViewVisible": 1,
            "location": "309.000000:253.000000",
            "nibPath": "/System/Library/Automator/Run Shell Script.action/Contents/Resources/Base.lproj/main.nib",
        },
        "isViewVisible": 1,
    }
    wflow = {
        "AMApplicationBuild": "523",
        "AMApplicationVersion": "2.10",
        "AMDocumentVersion": "2",
        "actions": [action],
        "connectors": {},
        "workflowMetaData": {
            "applicationBundleIDsByPath": {},
            "applicationPaths": [],
            "inputTypeIdentifier": "com.apple.Automator.fileSystemObject.image",
            "outputTypeIdentifier": "com.apple.Automator.nothing",
            "presentationMode": 15,
            "processesInput": 0,
            "serviceInputTypeIdentifier": "com.apple.Automator.fileSystemObject.image",
            "serviceOutputTypeIdentifier": "com.apple.Automator.nothing",
            "serviceProcessesInput": 0,
            "systemImageName": "NSActionTemplate",
            "useAutomaticInputType": 0,
            "workflowTypeIdentifier": "com.apple.Automator.servicesMenu",
        },
    }
    return {
        "Contents/Info.plist": plistlib.dumps(info),
        "Contents/document.wflow": plistlib.dumps(wflow),
    }


def macos_title(task: str, mode: str) -> str:
    """"CMFNet Restore" for the automatic entry (a bare "Restore" would not say whose it is
    among every app's Quick Actions), "CMFNet Restore - Deblur…" for the others."""
    if (task, mode) == AUTO_ITEM:
        return APP_NAME
    return f"{APP_NAME} - {item_label(task, mode)}"


def macos_shell_command(target: Target, task: str, mode: str) -> str:
    return " ".join(sh_quote(a) for a in target.argv(task, mode)) + ' -- "$@"'


# --------------------------------------------------------------------------- plan

@dataclass
class Report:
    """What an install or uninstall did, for install.py to print."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    registry: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per path, in the words of what happened to it in the end: a file the
        previous install had and this one wrote again is ``replaced``, not removed."""
        replaced = set(self.written) & set(self.removed)
        return ([f"{'replaced' if p in replaced else 'wrote   '} {p}" for p in self.written]
                + [f"removed  {p}" for p in self.removed if p not in replaced]
                + [f"registry HKCU\\{k}" for k in self.registry]
                + [f"skipped {s}" for s in self.skipped])


def nautilus_script_path(task: str, mode: str) -> Path:
    """Scripts ▸ Restore, and Scripts ▸ CMFNet Restore ▸ <task entry>."""
    scripts = xdg_data_home() / "nautilus" / "scripts"
    if (task, mode) == AUTO_ITEM:
        return scripts / item_label(task, mode)
    return scripts / SUBMENU / item_label(task, mode)


def linux_files(target: Target) -> list[PlannedFile]:
    data = xdg_data_home()
    servicemenus = data / "kio" / "servicemenus"
    files = [
        PlannedFile(data / "applications" / f"{APP_ID}.desktop",
                    freedesktop_entry(target).encode()),
        PlannedFile(servicemenus / f"{APP_ID}-{AUTO_TASK}.desktop",
                    dolphin_service_menu(target, top_level=True).encode(), executable=True),
        PlannedFile(servicemenus / f"{APP_ID}.desktop",
                    dolphin_service_menu(target).encode(), executable=True),
    ]
    for t, m in ITEMS:
        files.append(PlannedFile(nautilus_script_path(t, m),
                                 nautilus_script(target, t, m).encode(), executable=True))
        files.append(PlannedFile(data / "nemo" / "actions" / f"{APP_ID}-{t}-{m}.nemo_action",
                                 nemo_action(target, t, m).encode()))
    return files


def macos_files(target: Target) -> list[PlannedFile]:
    services = Path.home() / "Library" / "Services"
    files = []
    for t, m in ITEMS:
        bundle = services / f"{macos_title(t, m)}.workflow"
        for rel, content in macos_workflow_files(target, t, m).items():
            files.append(PlannedFile(bundle / rel, content))
    return files


def planned_files(target: Target, platform: str | None = None) -> list[PlannedFile]:
    platform = platform or sys.platform
    if platform == "win32":
        return []
    if platform == "darwin":
        return macos_files(target)
    return linux_files(target)


# --------------------------------------------------------------------------- manifest

def _load_manifest(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"files": [], "dirs": [], "registry": []}
    for k in ("files", "dirs", "registry"):
        data.setdefault(k, [])
    return data


def _save_manifest(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"), 0o644)


def _makedirs(path: Path, created: list[str]) -> None:
    """mkdir -p, remembering each directory it had to create (outermost first)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(str(d))


def write_files(files: list[PlannedFile], manifest: dict) -> list[str]:
    written = []
    for f in files:
        _makedirs(f.path.parent, manifest["dirs"])
        f.write()
        if str(f.path) not in manifest["files"]:
            manifest["files"].append(str(f.path))
        written.append(str(f.path))
    return written


def _mime_cache() -> Path:
    return xdg_data_home() / "applications" / "mimeinfo.cache"


def _cache_has_entries(path: Path) -> bool:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return True
    return any(ln.strip() and not ln.startswith("[") for ln in lines)


def _refresh_desktop_caches(platform: str) -> None:
    """Best effort: let "Open With" pick up the entry now rather than at next login."""
    if platform in ("win32", "darwin"):
        return
    apps = xdg_data_home() / "applications"
    if shutil.which("update-desktop-database") and apps.is_dir():
        subprocess.run(["update-desktop-database", "-q", str(apps)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------- API

def install_integrations(python_exe: str | os.PathLike, project_dir: str | os.PathLike, *,
                         gimp: bool = True, file_manager: bool = True,
                         platform: str | None = None, winreg_mod=None) -> Report:
    """Install every integration for the current user; returns what was done.

    ``python_exe``: the project's interpreter (the venv's ``bin/python`` or
    ``Scripts\\python.exe``); ``project_dir``: the checkout (holds
    ``plugin/desktop/restore_here.py`` and ``plugin/gimp/cmfnet-restore/``).
    Re-running replaces the previous installation (it is uninstalled first).
    """
    platform = platform or sys.platform
    python_exe = os.path.abspath(os.fspath(python_exe))
    project_dir = os.path.abspath(os.fspath(project_dir))
    target = Target(python_exe, project_dir)
    report = uninstall_integrations(platform=platform, winreg_mod=winreg_mod)
    report = Report(removed=report.removed)
    mpath = manifest_path(platform)
    manifest = {"version": 1, "python": python_exe, "project_dir": project_dir,
                "files": [], "dirs": [], "registry": []}
    _makedirs(mpath.parent, manifest["dirs"])
    try:
        if file_manager:
            report.written += write_files(planned_files(target, platform), manifest)
            if platform == "win32":
                keys = write_windows_registry(windows_registry_entries(target), winreg_mod)
                manifest["registry"] += [REGISTRY_ROOT, REGISTRY_MENU]
                report.registry += keys
        if gimp:
            profile = gimp_installer.gimp_profile_dir(platform)
            if profile is None:
                report.skipped.append(
                    "GIMP plug-in: no GIMP 3 profile found (start GIMP 3 once, then run "
                    "install.py again)")
            else:
                files = gimp_installer.plugin_files(python_exe, project_dir, profile)
                report.written += write_files(files, manifest)
        had_cache = _mime_cache().exists()
        _refresh_desktop_caches(platform)
        if platform not in ("win32", "darwin") and not had_cache and _mime_cache().exists():
            manifest["generated"] = [str(_mime_cache())]  # by update-desktop-database
    finally:
        _save_manifest(mpath, manifest)
    # what the previous install had and this one made again (folders, the MIME cache) was not
    # removed, in the end; files written again are reported as replaced
    report.removed = [p for p in report.removed
                      if p in report.written or not os.path.lexists(p.rstrip(os.sep))]
    return report


def uninstall_integrations(*, platform: str | None = None, winreg_mod=None) -> Report:
    """Remove exactly what the manifest lists: files, then the directories the
    install created (only if empty), then registry keys; finally the manifest."""
    platform = platform or sys.platform
    mpath = manifest_path(platform)
    report = Report()
    if not mpath.exists():
        return report
    manifest = _load_manifest(mpath)
    for f in manifest["files"]:
        p = Path(f)
        if p.is_file() or p.is_symlink():
            p.unlink()
            report.removed.append(f)
    for key in manifest["registry"]:
        if delete_windows_registry_tree(key, winreg_mod):
            report.registry.append(key)
    mpath.unlink()
    _refresh_desktop_caches(platform)
    for g in manifest.get("generated", []):
        # the cache our install brought into being goes too, unless it now lists
        # other applications' types (then it is someone else's as well)
        gp = Path(g)
        if gp.is_file() and not _cache_has_entries(gp):
            gp.unlink()
            report.removed.append(g)
    for d in sorted(manifest["dirs"], key=len, reverse=True):
        try:
            os.rmdir(d)  # only if empty: never removes what someone else put there
            report.removed.append(d + os.sep)
        except OSError:
            pass
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse  # noqa: PLC0415

    p = argparse.ArgumentParser(description="Install/remove CMFNet Restore's desktop integration")
    p.add_argument("--uninstall", action="store_true")
    p.add_argument("--python", default=sys.executable, help="the project's interpreter")
    p.add_argument("--project-dir", default=str(Path(__file__).resolve().parents[2]))
    p.add_argument("--no-gimp", action="store_true")
    a = p.parse_args(argv)
    if a.uninstall:
        rep = uninstall_integrations()
    else:
        rep = install_integrations(a.python, a.project_dir, gimp=not a.no_gimp)
    for line in rep.lines():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

