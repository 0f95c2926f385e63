"""File-manager integration (plugin/desktop): what install_integrations writes,
that desktop-file-validate accepts it, that the Nautilus / Nemo / Dolphin /
freedesktop entries run the intended command on the selected files, and that
uninstall removes exactly what was added.

Every test installs into a temporary HOME / XDG_DATA_HOME / XDG_CONFIG_HOME.
Most point the entries at a stub "project python" that only records its
command line; ``test_nautilus_save_copy_restores_for_real`` runs the real
engine (the project's venv and the conformance checkpoint).
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from plugin.desktop import integration  # noqa: E402
from plugin.desktop import restore_here  # noqa: E402
from tests.conftest import CONFORMANCE, imports_outside_stdlib  # noqa: E402

RUNNER = str(PROJECT / "plugin" / "desktop" / "restore_here.py")


# --------------------------------------------------------------------------- helpers

@pytest.fixture
def home(tmp_path, monkeypatch):
    """A throwaway user: HOME and the XDG dirs under tmp_path; no GIMP profile."""
    h = tmp_path / "home"
    (h / ".local" / "share").mkdir(parents=True)
    (h / ".config").mkdir()
    monkeypatch.setenv("HOME", str(h))
    monkeypatch.setenv("XDG_DATA_HOME", str(h / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(h / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(h / ".local" / "state"))
    monkeypatch.delenv("GIMP3_DIRECTORY", raising=False)
    monkeypatch.delenv("CMFNET_DATA_DIR", raising=False)
    return h


STUB = """#!{python}
import json, os, sys
with open({log!r}, "a") as fh:
    fh.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(),
        "nautilus": os.environ.get("NAUTILUS_SCRIPT_SELECTED_FILE_PATHS")}}) + "\\n")
"""


@pytest.fixture
def stub_python(tmp_path):
    """An executable standing in for the project's Python: logs each command line."""
    d = tmp_path / "stub dir $x"  # a path that needs quoting everywhere
    d.mkdir()
    log = tmp_path / "stub.log"
    exe = d / "python"
    exe.write_text(STUB.format(python=sys.executable, log=str(log)))
    exe.chmod(0o755)

    def calls():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    stub = _Stub(exe)
    stub.calls = calls
    return stub


class _Stub(str):
    """The stub's path (a str), with ``.calls()``."""


@pytest.fixture
def photos(tmp_path):
    d = tmp_path / "Pictures" / "Trip 2026"
    d.mkdir(parents=True)
    names = ["beach.jpg", "it's \"raining\" $HOME \\ 100%.png"]
    for n in names:
        (d / n).write_bytes(b"not really an image")
    return [d / n for n in names]


def read_entry(path: Path) -> dict[str, dict[str, str]]:
    """Minimal desktop-entry / keyfile reader: {group: {key: raw value}}."""
    groups: dict[str, dict[str, str]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = groups.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current[key] = value
    return groups


def unescape_string(value: str) -> str:
    out, i = [], 0
    table = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value) and value[i + 1] in table:
            out.append(table[value[i + 1]])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def expand_desktop_exec(raw: str, files: list[str]) -> list[str]:
    """Exec= per the Desktop Entry spec: unescape the string, split quoted
    arguments (backslash escapes " ` $ \\ inside quotes), expand %F / %f / %%."""
    s = unescape_string(raw)
    args: list[str] = []
    cur: str | None = None
    i = 0
    while i < len(s):
        c = s[i]
        if c == '"':
            cur = cur or ""
            i += 1
            while s[i] != '"':
                if s[i] == "\\" and s[i + 1] in '"`$\\':
                    cur += s[i + 1]
                    i += 2
                else:
                    cur += s[i]
                    i += 1
            i += 1
        elif c == " ":
            if cur is not None:
                args.append(cur)
            cur = None
            i += 1
        else:
            cur = (cur or "") + c
            i += 1
    if cur is not None:
        args.append(cur)
    out: list[str] = []
    for a in args:
        if a == "%F":
            out += files
        elif a == "%f":
            out += files[:1]
        else:
            assert "%" not in a.replace("%%", ""), f"unknown field code in {a!r}"
            out.append(a.replace("%%", "%"))
    return out


def installed(home, stub_python, project_dir=str(PROJECT)):
    return integration.install_integrations(str(stub_python), project_dir, gimp=False,
                                            platform="linux")


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# --------------------------------------------------------------------------- install

def test_the_entries_offer_every_type_the_engine_reads():
    """A copy of cmfnet_core.imageio.READABLE (GIF too: its first frame is restored)."""
    from cmfnet_core.imageio import READABLE, SUFFIX_FORMAT

    assert {"." + e for e in integration.EXTENSIONS} == set(READABLE)
    formats = {*SUFFIX_FORMAT.values(), *(s[1:].upper() for s in READABLE if s not in SUFFIX_FORMAT)}
    assert set(integration.MIME_TYPES) == {f"image/{f.lower()}" for f in formats}


def test_the_entries_offer_the_engines_tasks():
    """Copies of cmfnet_core.TASKS and of the automatic choice's name (these modules cannot
    import the package): kept equal here."""
    from cmfnet_core.tasks import AUTO_TASK, TASK_TITLES, TASKS

    assert integration.TASKS == restore_here.TASKS == TASKS
    assert integration.AUTO_TASK == restore_here.AUTO_TASK == AUTO_TASK
    assert set(integration.TASK_LABELS) == set(restore_here.TASK_VERBS) == set(TASKS)
    assert integration.TASK_LABELS == TASK_TITLES
    # the one-click entry first, then every task in the app and saved beside
    assert integration.ITEMS[0] == (AUTO_TASK, "save")
    assert set(integration.ITEMS[1:]) == {(t, m) for t in TASKS for m in ("open", "save")}


def test_the_gimp_installer_never_imports_the_desktop_integration():
    """One direction: the integration installs the GIMP plug-in (and imports its installer);
    the installer's files are described with plugin.install_plan, not with the integration."""
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from plugin.gimp import installer\n"
            "files = installer.plugin_files('/venv/bin/python', '/proj', '/profile')\n"
            "print(type(files[0]).__module__, 'plugin.desktop.integration' in sys.modules)")
    result = subprocess.run([sys.executable, "-S", "-I", "-c", code, str(PROJECT)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["plugin.install_plan", "False"]


def test_integration_and_runner_need_only_the_standard_library():
    """install.py may import the integration with a Python that has no numpy (so no
    cmfnet_core), and the runner may be started by one: both import with no site-packages."""
    load = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "import plugin.desktop.integration, plugin.desktop.restore_here")
    outside = set(imports_outside_stdlib(load, str(PROJECT)))
    loaded_by_path = {"cmfnet_core_results", "cmfnet_core_i18n"}  # restore_here.load_core_file
    assert outside - {"plugin", "__main__"} - loaded_by_path == set()


def test_install_writes_every_linux_entry(home, stub_python):
    report = installed(home, stub_python)
    data = home / ".local" / "share"
    expected = [
        data / "applications" / "cmfnet-restore.desktop",
        data / "kio" / "servicemenus" / "cmfnet-restore-auto.desktop",
        data / "kio" / "servicemenus" / "cmfnet-restore.desktop",
        data / "nautilus" / "scripts" / "Restore",  # Scripts ▸ Restore
        data / "nautilus" / "scripts" / "CMFNet Restore" / "Deblur…",
        data / "nautilus" / "scripts" / "CMFNet Restore" / "Deraindrop and save copy",
        data / "nemo" / "actions" / "cmfnet-restore-auto-save.nemo_action",
        data / "nemo" / "actions" / "cmfnet-restore-dehaze-save.nemo_action",
    ]
    for p in expected:
        assert p.is_file(), p
        assert str(p) in report.written
    assert len(report.written) == 3 + 7 + 7
    for menu in (data / "kio" / "servicemenus").iterdir():
        assert os.access(menu, os.X_OK), menu
    scripts = [data / "nautilus" / "scripts" / "Restore",
               *(data / "nautilus" / "scripts" / "CMFNet Restore").iterdir()]
    for script in scripts:
        assert os.access(script, os.X_OK), script
    manifest = json.loads((data / "cmfnet-restore" / "integrations.json").read_text())
    assert sorted(manifest["files"]) == sorted(report.written)
    assert manifest["python"] == str(stub_python)


def test_installing_again_reports_the_files_as_replaced(home, stub_python):
    first = installed(home, stub_python)
    again = installed(home, stub_python)
    lines = again.lines()
    assert sorted(lines) == sorted(f"replaced {p}" for p in first.written)
    assert not any(line.startswith("removed") for line in lines)


def test_desktop_entry_contents(home, stub_python):
    installed(home, stub_python)
    entry = read_entry(home / ".local/share/applications/cmfnet-restore.desktop")
    main = entry["Desktop Entry"]
    assert main["Type"] == "Application"
    assert set(main["MimeType"].rstrip(";").split(";")) >= {"image/jpeg", "image/png", "image/tiff"}
    actions = main["Actions"].rstrip(";").split(";")
    assert actions == ["auto-save", "deblur-open", "dehaze-open", "deraindrop-open",
                       "deblur-save", "dehaze-save", "deraindrop-save"]
    assert entry["Desktop Action auto-save"]["Name"] == "Restore"
    assert entry["Desktop Action dehaze-open"]["Name"] == "Dehaze…"
    # Dolphin: "Restore" at the top of the context menu, the tasks in a submenu
    top = read_entry(home / ".local/share/kio/servicemenus/cmfnet-restore-auto.desktop")
    assert top["Desktop Entry"]["X-KDE-Priority"] == "TopLevel"
    assert "X-KDE-Submenu" not in top["Desktop Entry"]
    assert top["Desktop Entry"]["Actions"] == "auto-save;"
    assert top["Desktop Action auto-save"]["Name"] == "Restore"
    menu = read_entry(home / ".local/share/kio/servicemenus/cmfnet-restore.desktop")
    assert menu["Desktop Entry"]["X-KDE-Submenu"] == "CMFNet Restore"
    assert "auto-save" not in menu["Desktop Entry"]["Actions"]
    for entry in (top, menu):
        assert "image/jpeg" in entry["Desktop Entry"]["MimeType"]


@pytest.mark.skipif(not shutil.which("desktop-file-validate"),
                    reason="optional dependency desktop-file-validate not installed (Debian: desktop-file-utils)")
def test_desktop_file_validate_passes_on_every_desktop_file(home, stub_python, tmp_path):
    # also with a project path that needs quoting and escaping
    odd_project = tmp_path / "odd proj $HOME \"q\" 100%"
    for project in (str(PROJECT), str(odd_project)):
        report = installed(home, stub_python, project)
        desktop_files = [p for p in report.written if p.endswith(".desktop")]
        assert len(desktop_files) == 3
        for f in desktop_files:
            res = subprocess.run(["desktop-file-validate", f], capture_output=True, text=True)
            assert res.returncode == 0 and not res.stdout.strip(), f"{f}:\n{res.stdout}{res.stderr}"


# --------------------------------------------------------------------------- commands run

def test_nautilus_scripts_run_the_runner_on_the_selection(home, stub_python, photos):
    installed(home, stub_python)
    folder = photos[0].parent
    env = dict(os.environ,
               NAUTILUS_SCRIPT_SELECTED_FILE_PATHS="".join(f"{p}\n" for p in photos),
               NAUTILUS_SCRIPT_SELECTED_URIS="".join(f"{p.as_uri()}\n" for p in photos),
               NAUTILUS_SCRIPT_CURRENT_URI=folder.as_uri(),
               NAUTILUS_SCRIPT_WINDOW_GEOMETRY="800x600+0+0")
    # as Nautilus does for a local folder: cwd = the folder, arguments = the names
    for task, mode in integration.ITEMS:
        script = integration.nautilus_script_path(task, mode)
        subprocess.run([str(script), *[p.name for p in photos]], cwd=folder, env=env,
                       check=True)
    calls = stub_python.calls()
    assert len(calls) == 7
    first = calls[0]  # Scripts ▸ Restore
    assert first["argv"] == [RUNNER, "--task", "auto", "--save", "--", *[p.name for p in photos]]
    assert first["cwd"] == str(folder)
    assert first["nautilus"].splitlines() == [str(p) for p in photos]
    assert calls[1]["argv"][:4] == [RUNNER, "--task", "deblur", "--open"]
    assert calls[4]["argv"][:4] == [RUNNER, "--task", "deblur", "--save"]
    # the runner then resolves the names against the folder Nautilus set
    assert restore_here.selected_files([p.name for p in photos], {}) == [Path(p.name).absolute()
                                                                        for p in photos]


def test_runner_reads_the_nautilus_variable_without_arguments(photos):
    env = {"NAUTILUS_SCRIPT_SELECTED_FILE_PATHS": "".join(f"{p}\n" for p in photos)}
    assert restore_here.selected_files([], env) == photos
    env = {"NEMO_SCRIPT_SELECTED_FILE_PATHS": f"{photos[1]}\n"}
    assert restore_here.selected_files([], env) == [photos[1]]
    assert restore_here.selected_files([photos[0].as_uri()], {}) == [photos[0]]


def test_runner_runs_cmfnet_restore_and_notifies(tmp_path, stub_python, photos, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    notes = tmp_path / "notes.log"
    (bin_dir / "notify-send").write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" >> '{notes}'\necho >> '{notes}'\n")
    (bin_dir / "notify-send").chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}",
               XDG_STATE_HOME=str(tmp_path / "state"),
               NAUTILUS_SCRIPT_SELECTED_FILE_PATHS="".join(f"{p}\n" for p in photos))
    subprocess.run([sys.executable, RUNNER, "--python", str(stub_python), "--task", "dehaze",
                    "--save", "--"], env=env, check=True, cwd=tmp_path)
    (call,) = stub_python.calls()
    assert call["argv"] == ["-m", "cmfnet_core.cli", "restore", *map(str, photos),
                            "--task", "dehaze", "--overwrite", "--progress-lines"]
    sent = notes.read_text().splitlines()
    assert len(sent) == 2 and "CMFNet Restore" in sent[0] and "Dehazed 2 photos" in sent[1]
    assert (tmp_path / "state" / "cmfnet-restore" / "restore-here.log").is_file()
    # --open hands the files (and the task) to the app
    subprocess.run([sys.executable, RUNNER, "--python", str(stub_python), "--task", "deblur",
                    "--open", str(photos[0])], env=env, check=True)
    assert stub_python.calls()[-1]["argv"] == ["-m", "cmfnet_core.cli", "gui", "--task", "deblur",
                                               str(photos[0])]


@pytest.mark.parametrize("printed,named", [
    (["{folder}/beach.dehaze-2.jpg"], "beach.dehaze-2.jpg"),  # the name the CLI really wrote
    ([], "saved beside the original"),  # nothing said: no name is made up
])
def test_runner_names_the_file_the_cli_wrote(tmp_path, photos, printed, named):
    from cmfnet_core.results import Result

    cli = tmp_path / "cli-python"
    lines = [Result("written", "dehaze", None, None, str(photos[0]), line.format(folder=photos[0].parent)).line()
             for line in printed]
    cli.write_text("#!/bin/sh\n" + "".join(f"printf '%s\\n' {shlex.quote(line)} >&2\n" for line in lines)
                   + "exit 0\n")
    cli.chmod(0o755)
    env = dict(os.environ, PATH="/usr/bin:/bin", XDG_STATE_HOME=str(tmp_path / "state"))
    res = subprocess.run([sys.executable, RUNNER, "--python", str(cli), "--task", "dehaze",
                          "--save", str(photos[0])], env=env, capture_output=True, text=True)
    assert res.returncode == 0
    done = res.stderr.splitlines()[-1]
    assert done.startswith("Dehazed beach.jpg") and named in done
    assert "beach.dehaze.jpg" not in done


def test_runner_passes_on_the_hint_about_light_weights(tmp_path, photos):
    from cmfnet_core.results import Result

    written = Result("written", "deblur", None, None, str(photos[0]),
                     str(photos[0].with_name("beach.deblur.jpg"))).line()
    note = ("cmfnet: note: deblur ran on the light weights that come with this tool, which change "
            "blur only a little; the authors' full-size weights restore visibly: "
            "cmfnet weights download deblur")
    cli = tmp_path / "cli-python"
    cli.write_text("#!/bin/sh\n" + "".join(f"printf '%s\\n' {shlex.quote(line)} >&2\n"
                                            for line in (written, note)) + "exit 0\n")
    cli.chmod(0o755)
    env = dict(os.environ, PATH="/usr/bin:/bin", XDG_STATE_HOME=str(tmp_path / "state"))
    res = subprocess.run([sys.executable, RUNNER, "--python", str(cli), "--task", "deblur",
                          "--save", str(photos[0])], env=env, capture_output=True, text=True)
    assert res.returncode == 0
    assert "Deblurred beach.jpg" in res.stderr and "beach.deblur.jpg" in res.stderr
    assert res.stderr.splitlines()[-1].endswith(
        "beach.deblur.jpg — made with the light weights that come with CMFNet Restore; for "
        "visibly better results, run 'cmfnet weights download' once.")


def test_runner_reports_failure(tmp_path, photos):
    bad = tmp_path / "badpython"
    from cmfnet_core.results import Result

    said = Result("failed", error="weights", message="no weights for deblur").line()
    bad.write_text(f"#!/bin/sh\necho 'cmfnet: error: no weights for deblur' >&2\n"
                   f"echo '{said}' >&2\nexit 3\n")
    bad.chmod(0o755)
    env = dict(os.environ, PATH="/usr/bin:/bin", XDG_STATE_HOME=str(tmp_path / "state"))
    res = subprocess.run([sys.executable, RUNNER, "--python", str(bad), "--task", "deblur",
                          "--save", str(photos[0])], env=env, capture_output=True, text=True)
    assert res.returncode == 3
    assert "no weights for deblur" in res.stderr
    assert restore_here.NEXT_STEPS["weights"] in res.stderr  # how to get the authors' weights


def test_save_without_a_task_is_the_automatic_choice(tmp_path, stub_python, photos):
    env = dict(os.environ, PATH="/usr/bin:/bin", XDG_STATE_HOME=str(tmp_path / "state"))
    subprocess.run([sys.executable, RUNNER, "--python", str(stub_python), "--save",
                    str(photos[0])], env=env, check=True, capture_output=True)
    (call,) = stub_python.calls()
    assert call["argv"] == ["-m", "cmfnet_core.cli", "restore", str(photos[0]), "--task", "auto",
                            "--overwrite", "--progress-lines", "--if-unsure", "likely"]


def test_the_outcome_says_what_was_found_and_what_was_left(tmp_path):
    """From the RESULT lines alone (made here by the engine's own writer; tests/test_results.py
    runs the real CLI): the human messages are shown, never parsed."""
    from cmfnet_core.results import Result

    hazy, fine, rainy = (tmp_path / n for n in ("hazy.jpg", "fine.jpg", "rainy.png"))
    said = {hazy: Result("written", "dehaze", 0.87, None, str(hazy), f"{tmp_path}/hazy.dehaze.jpg",
                         "Looks hazy · 87 %"),
            fine: Result("skipped", "none", 0.91, None, str(fine), None, "Looks fine · 91 %"),
            rainy: Result("written", "deraindrop", 0.64, None, str(rainy),
                          f"{tmp_path}/rainy.deraindrop-2.png", "Looks rain-spotted · 64 %")}
    outcome = restore_here.outcome
    assert outcome([hazy], "auto", 0, [said[hazy]]) == (
        "Dehazed hazy.jpg", "Looks hazy · 87 %: saved hazy.dehaze.jpg", False)
    # a photo that looks fine is not claimed to be written
    assert outcome([fine], "auto", 0, [said[fine]]) == (
        "Left fine.jpg as it is", "Looks fine · 91 %; no copy was written", False)
    summary, body, error = outcome([hazy, fine, rainy], "auto", 0, list(said.values()))
    assert (summary, error) == ("Restored 2 of 3 photos", False)
    assert body == "hazy.dehaze.jpg, rainy.deraindrop-2.png, fine.jpg left as it is"
    assert outcome([fine, fine], "auto", 0, [said[fine]])[0] == "Left 2 photos as they are"
    # an unsure photo (the line's UNSURE field) was restored with the likely task: said, not
    # "skipped"; told by the field, so whatever language the CLI spoke its message in
    for words in ("Maybe hazy · 55 % (or blurry · 30 %)", "可能有雾 · 55 %（也可能模糊 · 30 %）",
                  "Vielleicht dunstig · 55 % (oder unscharf · 30 %)"):
        maybe = Result("written", "dehaze", 0.55, None, str(hazy), f"{tmp_path}/hazy.dehaze.jpg",
                       words, unsure=True)
        assert outcome([hazy], "auto", 0, [maybe]) == (
            "Dehazed hazy.jpg", f"Not sure, took the likelier: {words}: saved hazy.dehaze.jpg", False)
    # and a sure one is not called a guess, whatever its words
    sure = Result("written", "dehaze", 0.55, None, str(hazy), f"{tmp_path}/hazy.dehaze.jpg",
                  "Maybe hazy · 55 %")
    assert outcome([hazy], "auto", 0, [sure])[1] == "Maybe hazy · 55 %: saved hazy.dehaze.jpg"
    # one photo failed: named, with the reason and the next step, the others still counted
    broken = Result("failed", None, None, "image", str(rainy), None,
                    f"{rainy}: not an image, or a format this tool does not read")
    assert outcome([hazy, rainy], "auto", 1, [said[hazy], broken]) == (
        "Restored 1 of 2 photos; 1 could not be restored",
        f"{broken.message}\n{restore_here.NEXT_STEPS['image']}", True)
    # the run as a whole failed (no detector weights): nothing is claimed per photo
    whole = Result("failed", error="detector", message="cannot read the detector's weights")
    assert outcome([hazy], "auto", 3, [whole]) == (
        "CMFNet Restore: restore failed",
        f"cannot read the detector's weights\n{restore_here.NEXT_STEPS['detector']}", True)


FAKE_DETECTOR = """\
# Test stand-in for the trained detector, loaded at interpreter start (sitecustomize):
# a photo whose first pixel is 10 looks hazy, 60 maybe rain-spotted, 200 fine.
import cmfnet_core.detect as detect

class _Fake:
    def __call__(self, image):
        if int(image.reshape(-1)[0]) == 10:
            return detect.Detection({"deblur": 0.05, "dehaze": 0.87, "deraindrop": 0.05, "none": 0.03})
        if int(image.reshape(-1)[0]) == 60:
            return detect.Detection({"deblur": 0.1, "dehaze": 0.35, "deraindrop": 0.45, "none": 0.1})
        return detect.Detection({"deblur": 0.03, "dehaze": 0.03, "deraindrop": 0.03, "none": 0.91})

detect.default_detector = lambda backend="auto": _Fake()
"""


def test_restore_entry_runs_the_automatic_choice_for_real(tmp_path):
    """The right-click "Restore" through the real `cmfnet restore --task auto` (with a
    detector whose answers the test sets): what it found is said, the fine photo left alone."""
    ready = _real_engine_ready()
    if ready is None:
        pytest.skip("optional dependency: a Python that imports cmfnet_core, Pillow and numpy")
    py, _ = ready
    np = pytest.importorskip("numpy")
    Image = pytest.importorskip("PIL.Image")
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAKE_DETECTOR)
    folder = tmp_path / "My Photos"
    folder.mkdir()
    rng = np.random.default_rng(2)
    hazy, fine, unsure = folder / "hazy day.png", folder / "fine day.png", folder / "wet day.png"
    for path, first in ((hazy, 10), (fine, 200), (unsure, 60)):
        pixels = rng.integers(20, 180, (32, 40, 3), dtype=np.uint8)
        pixels[0, 0, 0] = first
        Image.fromarray(pixels).save(path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    notes = tmp_path / "notes.log"
    (bin_dir / "notify-send").write_text(f"#!/bin/sh\nprintf '%s|' \"$@\" >> '{notes}'\necho >> '{notes}'\n")
    (bin_dir / "notify-send").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PATH=f"{bin_dir}:/usr/bin:/bin", PYTHONPATH=str(site), CMFNET_BACKEND="paddle",
               XDG_STATE_HOME=str(tmp_path / "state"))
    res = subprocess.run([str(py), RUNNER, "--task", "auto", "--save", str(hazy), str(fine), str(unsure)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["fine day.png", "hazy day.dehaze.png",
                                                        "hazy day.png", "wet day.deraindrop.png",
                                                        "wet day.png"]
    done = notes.read_text().splitlines()[-1].split("|")
    assert done[-3:-1] == ["Restored 2 of 3 photos",
                           "hazy day.dehaze.png, wet day.deraindrop.png, fine day.png left as it is"
                           " — made with the light weights that come with CMFNet Restore; for "
                           "visibly better results, run 'cmfnet weights download' once."]
    res = subprocess.run([str(py), RUNNER, "--task", "auto", "--save", str(unsure)],
                         env=env, capture_output=True, text=True, timeout=300)
    title, body = notes.read_text().splitlines()[-1].split("|")[-3:-1]
    assert title == "Deraindropped wet day.png"
    assert body.startswith("Not sure, took the likelier: Maybe rain-spotted · 45 % (or hazy · 35 %): saved")
    res = subprocess.run([str(py), RUNNER, "--task", "auto", "--save", str(hazy)],
                         env=env, capture_output=True, text=True, timeout=300)
    title, body = notes.read_text().splitlines()[-1].split("|")[-3:-1]
    assert title == "Dehazed hazy day.png"
    assert re.fullmatch(r"Looks hazy · 87 %: saved hazy day\.dehaze(-2)?\.png", body), body


def test_dolphin_service_menu_exec_runs_the_intended_command(home, stub_python, photos):
    installed(home, stub_python)
    actions = []
    for name in ("cmfnet-restore-auto.desktop", "cmfnet-restore.desktop"):
        menu = read_entry(home / ".local/share/kio/servicemenus" / name)
        for action in menu["Desktop Entry"]["Actions"].rstrip(";").split(";"):
            actions.append(action)
            argv = expand_desktop_exec(menu[f"Desktop Action {action}"]["Exec"],
                                       list(map(str, photos)))
            subprocess.run(argv, check=True)
    calls = stub_python.calls()
    assert len(calls) == 7
    assert calls[0]["argv"] == [RUNNER, "--task", "auto", "--save", *map(str, photos)]
    task, mode = actions[1].split("-")
    assert calls[1]["argv"] == [RUNNER, "--task", task, f"--{mode}", *map(str, photos)]
    assert [c["argv"][2] for c in calls] == [a.split("-")[0] for a in actions]


def test_desktop_entry_exec_with_odd_paths(home, stub_python, photos, tmp_path):
    odd_project = tmp_path / "odd proj $HOME \"q\" 100% \\back"
    integration.install_integrations(str(stub_python), str(odd_project), gimp=False,
                                     platform="linux")
    entry = read_entry(home / ".local/share/applications/cmfnet-restore.desktop")
    argv = expand_desktop_exec(entry["Desktop Action deraindrop-save"]["Exec"], [str(photos[1])])
    runner = str(odd_project / "plugin" / "desktop" / "restore_here.py")
    assert argv == [str(stub_python), runner, "--task", "deraindrop", "--save", str(photos[1])]
    argv = expand_desktop_exec(entry["Desktop Entry"]["Exec"], [str(photos[0])])
    assert argv == [str(stub_python), runner, "--open", str(photos[0])]


@pytest.mark.skipif(not shutil.which("gio"), reason="optional dependency gio not installed (Debian: libglib2.0-bin)")
def test_gio_launches_the_desktop_entry(home, stub_python, photos):
    """GLib's own desktop-entry launcher parses our Exec= the same way."""
    installed(home, stub_python)
    app = home / ".local/share/applications/cmfnet-restore.desktop"
    res = subprocess.run(["gio", "launch", str(app), *map(str, photos)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    for _ in range(100):  # gio does not wait for the child
        if stub_python.calls():
            break
        import time
        time.sleep(0.05)
    assert stub_python.calls()[0]["argv"] == [RUNNER, "--open", *map(str, photos)]


def gio_file_uri(path: Path) -> str:
    """file:// URI escaped the way GLib's g_filename_to_uri does (sub-delims kept)."""
    from urllib.parse import quote

    return "file://" + quote(str(path), safe="/!$&'()*+,;=:@~")


def test_nemo_actions_run_the_intended_command(home, stub_python, photos):
    installed(home, stub_python)
    actions = sorted((home / ".local/share/nemo/actions").glob("*.nemo_action"))
    assert len(actions) == 7
    for path in actions:
        group = read_entry(path)["Nemo Action"]
        assert group["Selection"] == "notnone" and "jpg" in group["Extensions"]
        assert group["Quote"] == "double" and group["UriScheme"] == "file"
        # what Nemo does: %U -> each URI in double quotes, space separated; then a
        # shell-like split (g_shell_parse_argv) and spawn
        line = unescape_string(group["Exec"]).replace(
            "%U", " ".join(f'"{gio_file_uri(p)}"' for p in photos)).replace("%%", "%")
        subprocess.run(shlex.split(line), check=True)
    calls = stub_python.calls()
    assert len(calls) == 7
    names = {p.name: read_entry(p)["Nemo Action"]["Name"] for p in actions}
    assert names["cmfnet-restore-auto-save.nemo_action"] == "Restore"
    assert names["cmfnet-restore-deblur-open.nemo_action"] == "CMFNet Restore: Deblur…"
    assert actions[1].name == "cmfnet-restore-deblur-open.nemo_action"
    assert calls[0]["argv"][:5] == [RUNNER, "--task", "auto", "--save", "--"]
    args = calls[1]["argv"]
    assert args[:5] == [RUNNER, "--task", "deblur", "--open", "--"]
    # the runner turns the URIs back into the exact paths, quotes and all
    assert restore_here.selected_files(args[5:], {}) == photos


# --------------------------------------------------------------------------- uninstall

def test_uninstall_removes_exactly_what_was_added(home, stub_python):
    data = home / ".local" / "share"
    # things the user already had must survive
    (data / "nautilus" / "scripts").mkdir(parents=True)
    mine = data / "nautilus" / "scripts" / "my script"
    mine.write_text("#!/bin/sh\n")
    (data / "applications").mkdir()
    other = data / "applications" / "other.desktop"
    other.write_text("[Desktop Entry]\n")
    weights = data / "cmfnet-restore" / "weights"
    weights.mkdir(parents=True)
    before = all_files(home)

    installed(home, stub_python)
    installed(home, stub_python)  # re-install replaces, never duplicates
    manifest = json.loads((data / "cmfnet-restore" / "integrations.json").read_text())
    assert len(manifest["files"]) == len(set(manifest["files"])) == 17
    report = integration.uninstall_integrations(platform="linux")
    removed_files = {r for r in report.removed if not r.endswith(os.sep)}
    assert set(manifest["files"]) <= removed_files
    assert removed_files - set(manifest["files"]) <= {str(data / "applications" / "mimeinfo.cache")}
    assert all_files(home) == before
    assert mine.read_text() == "#!/bin/sh\n" and other.exists() and weights.is_dir()
    # nothing left to remove
    assert integration.uninstall_integrations(platform="linux").removed == []


def test_uninstall_also_removes_the_gimp_plugin(home, stub_python, monkeypatch):
    profile = home / ".config" / "GIMP" / "3.0"
    profile.mkdir(parents=True)
    report = integration.install_integrations(str(stub_python), str(PROJECT), platform="linux")
    plug = profile / "plug-ins" / "cmfnet-restore"
    assert (plug / "cmfnet-restore.py").is_file() and os.access(plug / "cmfnet-restore.py", os.X_OK)
    cfg = json.loads((plug / "cmfnet-restore.json").read_text())
    assert cfg == {"python": str(stub_python), "project_dir": str(PROJECT), "weights": None}
    assert str(plug / "cmfnet-restore.py") in report.written
    integration.uninstall_integrations(platform="linux")
    assert not (profile / "plug-ins").exists() and profile.is_dir()


def test_no_gimp_profile_is_reported_not_created(home, stub_python):
    report = integration.install_integrations(str(stub_python), str(PROJECT), platform="linux")
    assert any("GIMP" in s for s in report.skipped)
    assert not (home / ".config" / "GIMP").exists()


# --------------------------------------------------------------------------- Windows, macOS

class FakeWinreg:
    """Just enough of winreg to run the registry code path: a dict of keys."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_WRITE, KEY_READ, REG_SZ = 0x20006, 0x20019, 1

    def __init__(self):
        self.keys: dict[str, dict[str, tuple[int, str]]] = {}

    class _Handle:
        def __init__(self, reg, path):
            self.reg, self.path = reg, path

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def CreateKeyEx(self, root, sub, reserved, access):  # noqa: N802
        assert root == "HKCU" and access & self.KEY_WRITE
        parts = sub.split("\\")
        for i in range(1, len(parts) + 1):
            self.keys.setdefault("\\".join(parts[:i]), {})
        return self._Handle(self, sub)

    def SetValueEx(self, handle, name, reserved, kind, value):  # noqa: N802
        assert kind == self.REG_SZ and isinstance(value, str)
        self.keys[handle.path][name] = (kind, value)

    def OpenKey(self, root, sub, reserved, access):  # noqa: N802
        if sub not in self.keys:
            raise FileNotFoundError(sub)
        return self._Handle(self, sub)

    def EnumKey(self, handle, index):  # noqa: N802
        prefix = handle.path + "\\"
        children = sorted(k[len(prefix):] for k in self.keys
                          if k.startswith(prefix) and "\\" not in k[len(prefix):])
        if index >= len(children):
            raise OSError("no more")
        return children[index]

    def DeleteKey(self, root, sub):  # noqa: N802
        prefix = sub + "\\"
        assert not any(k.startswith(prefix) for k in self.keys), "DeleteKey on a key with subkeys"
        del self.keys[sub]


def test_windows_registry_entries():
    target = integration.Target(r"C:\Users\Ann Lee\cmfnet\.venv\Scripts\python.exe",
                                r"C:\Users\Ann Lee\cmfnet")
    entries = integration.windows_registry_entries(target)
    shell = r"Software\Classes\SystemFileAssociations\image\shell"
    root, menu = integration.REGISTRY_ROOT, integration.REGISTRY_MENU
    assert (root, menu) == (shell + r"\CMFNetRestore", shell + r"\CMFNetRestoreTasks")
    values = {(k, n): v for k, n, v in entries}
    python = '"C:\\Users\\Ann Lee\\cmfnet\\.venv\\Scripts\\pythonw.exe" '
    runner = '"C:\\Users\\Ann Lee\\cmfnet\\plugin\\desktop\\restore_here.py" '
    # "Restore": a verb of its own, the automatic choice
    assert values[(root, "MUIVerb")] == "Restore" and (root, "SubCommands") not in values
    assert values[(root + r"\command", "")] == python + runner + '--task auto --save "%1"'
    # "CMFNet Restore ▸": a cascading menu of the tasks
    assert values[(menu, "MUIVerb")] == "CMFNet Restore" and values[(menu, "SubCommands")] == ""
    cmds = {k: v for (k, n), v in values.items() if k.endswith("\\command")}
    assert len(cmds) == 7
    cmd = values[(menu + r"\shell\04-deblur-save\command", "")]
    assert cmd == python + runner + '--task deblur --save "%1"'
    assert values[(menu + r"\shell\01-deblur-open", "MUIVerb")] == "Deblur…"


def test_windows_install_and_uninstall_with_fake_winreg(home, stub_python):
    reg = FakeWinreg()
    report = integration.install_integrations(str(stub_python), str(PROJECT), gimp=False,
                                              platform="win32", winreg_mod=reg)
    root = integration.REGISTRY_ROOT
    assert reg.keys[root]["MUIVerb"] == (1, "Restore")
    assert reg.keys[integration.REGISTRY_MENU]["MUIVerb"] == (1, "CMFNet Restore")
    assert len([k for k in reg.keys if k.endswith("\\command")]) == 7
    assert report.registry[0] == root and report.written == []
    # the manifest (in %APPDATA% on Windows; HOME here) lists both key trees
    integration.uninstall_integrations(platform="win32", winreg_mod=reg)
    assert not any(k.startswith(root) for k in reg.keys)  # CMFNetRestoreTasks starts so too
    assert r"Software\Classes\SystemFileAssociations\image\shell" in reg.keys  # parents stay


def test_windows_quote():
    q = integration.windows_quote
    assert q("plain") == "plain"
    assert q(r"C:\a b\x.py") == r'"C:\a b\x.py"'
    assert q('say "hi"') == r'"say \"hi\""'
    assert q("C:\\dir with space\\") == '"C:\\dir with space\\\\"'


def test_macos_quick_actions_are_valid_plists(home, stub_python):
    files = integration.planned_files(integration.Target(str(stub_python), "/Users/a/cmfnet"),
                                      "darwin")
    assert len(files) == 14
    bundles = {f.path.parent.parent.name for f in files}
    assert "CMFNet Restore.workflow" in bundles  # the automatic one
    assert "CMFNet Restore - Deblur and save copy.workflow" in bundles
    commands = []
    for f in files:
        assert "Library/Services/CMFNet Restore" in str(f.path)
        data = plistlib.loads(f.content)
        if f.path.name == "document.wflow":
            params = data["actions"][0]["action"]["ActionParameters"]
            cmd = params["COMMAND_STRING"]
            assert cmd.endswith('-- "$@"') and params["inputMethod"] == 1
            assert shlex.split(cmd)[:2] == [str(stub_python),
                                            "/Users/a/cmfnet/plugin/desktop/restore_here.py"]
            commands.append((f.path.parent.parent.name, shlex.split(cmd)[2:4]))
        else:
            assert data["NSServices"][0]["NSSendFileTypes"] == ["public.image"]
    assert ("CMFNet Restore.workflow", ["--task", "auto"]) in commands


# --------------------------------------------------------------------------- real engine

def _real_engine_ready():
    py = PROJECT / ".venv" / "bin" / "python"  # the project's own, else the one running the tests
    py = py if py.exists() else Path(sys.executable)
    weights = CONFORMANCE / "small_official.pth"
    ok = subprocess.run([str(py), "-c", "import cmfnet_core.cli, PIL, numpy"], cwd=PROJECT,
                        capture_output=True).returncode == 0
    return (py, weights) if ok else None


def test_nautilus_save_copy_restores_for_real(home, tmp_path):
    ready = _real_engine_ready()
    if ready is None:
        pytest.skip("optional dependency: a Python that imports cmfnet_core, Pillow and numpy")
    py, weights = ready
    np = pytest.importorskip("numpy")
    Image = pytest.importorskip("PIL.Image")
    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    # default weights for deblur = the small conformance checkpoint, in this temp user
    subprocess.run([str(py), "-m", "cmfnet_core.cli", "weights", "import", "deblur",
                    str(weights)], check=True, env=env, capture_output=True)
    integration.install_integrations(str(py), str(PROJECT), gimp=False, platform="linux")
    folder = tmp_path / "My Photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    photo = folder / "street cat.png"
    Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(photo)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    notes = tmp_path / "notes.log"
    (bin_dir / "notify-send").write_text(f"#!/bin/sh\necho \"$@\" >> '{notes}'\n")
    (bin_dir / "notify-send").chmod(0o755)
    script = home / ".local/share/nautilus/scripts/CMFNet Restore/Deblur and save copy"
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    run_env.update(PATH=f"{bin_dir}:/usr/bin:/bin", NAUTILUS_SCRIPT_SELECTED_FILE_PATHS=f"{photo}\n")
    subprocess.run([str(script), photo.name], cwd=folder, env=run_env, check=True, timeout=300)
    out = folder / "street cat.deblur.png"
    assert out.is_file()
    expected = tmp_path / "expected.png"
    subprocess.run([str(py), "-m", "cmfnet_core.cli", "restore", str(photo), "-o", str(expected),
                    "--task", "deblur", "--weights", str(weights)], check=True, env=env,
                   capture_output=True)
    assert (np.asarray(Image.open(out)) == np.asarray(Image.open(expected))).all()
    assert "Deblurred street cat.png" in notes.read_text()
    # run again: the earlier copy is replaced (--overwrite), not joined by a -2 copy
    out.write_bytes(b"the earlier copy")
    subprocess.run([str(script), photo.name], cwd=folder, env=run_env, check=True, timeout=300)
    assert sorted(p.name for p in folder.iterdir()) == ["street cat.deblur.png", "street cat.png"]
    assert (np.asarray(Image.open(out)) == np.asarray(Image.open(expected))).all()
