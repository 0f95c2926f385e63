"""Settings remembered between runs (QSettings, INI format, per user).

On Linux the file is ``~/.config/cmfnet-restore/cmfnet-restore.ini``; tests
point it elsewhere with ``QSettings.setPath`` or pass their own QSettings.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import QByteArray, QSettings

from cmfnet_core import i18n
from cmfnet_core.detect import AUTO_TASK
from cmfnet_core.engine import DEFAULT_OVERLAP
from cmfnet_core.weights import TASKS

from .jobs import EngineOptions

ORGANIZATION = "cmfnet-restore"
APPLICATION = "cmfnet-restore"
DISPLAY_NAME = "CMFNet Restore"
MAX_RECENT = 10


def open_settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


class AppSettings:
    """Typed access to the few things the app remembers."""

    def __init__(self, store: QSettings | None = None):
        self.store = store if store is not None else open_settings()

    # --- engine options -------------------------------------------------------------
    def engine_options(self) -> EngineOptions:
        s = self.store
        threads = int(s.value("engine/threads", 0))
        return EngineOptions(
            tile=int(s.value("engine/tile", 0)),  # 0: automatic (engine.auto_tile)
            overlap=int(s.value("engine/overlap", DEFAULT_OVERLAP)),
            device=str(s.value("engine/device", "cpu")),
            backend=str(s.value("engine/backend", "auto")),
            precision=str(s.value("engine/precision", "auto")),
            threads=threads or None,
        )

    def set_engine_options(self, options: EngineOptions) -> None:
        s = self.store
        s.setValue("engine/tile", options.tile)
        s.setValue("engine/overlap", options.overlap)
        s.setValue("engine/device", options.device)
        s.setValue("engine/backend", options.backend)
        s.setValue("engine/precision", options.precision)
        s.setValue("engine/threads", options.threads or 0)
        s.sync()

    # --- task ---------------------------------------------------------------------------
    def task(self) -> str:
        """The task chosen: one of TASKS, or AUTO_TASK (found per photo; the default)."""
        task = str(self.store.value("ui/task", AUTO_TASK))
        return task if task in TASKS + (AUTO_TASK,) else AUTO_TASK

    def set_task(self, task: str) -> None:
        self.store.setValue("ui/task", task)

    # --- language -------------------------------------------------------------------------
    def language(self) -> str:
        """The language chosen in Preferences, or ``i18n.SYSTEM`` (the default): follow the system."""
        return str(self.store.value("ui/language", i18n.SYSTEM))

    def set_language(self, language: str) -> None:
        self.store.setValue("ui/language", language)
        self.store.sync()

    # --- files ---------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self.store.value("files/recent", [])
        if isinstance(value, str):  # QSettings gives a lone string for one-element lists
            value = [value]
        return [str(v) for v in (value or [])]

    def add_recent_file(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_files() if p != path]
        recent.insert(0, path)
        del recent[MAX_RECENT:]
        self.store.setValue("files/recent", recent)
        return recent

    def clear_recent_files(self) -> None:
        self.store.setValue("files/recent", [])

    def last_folder(self) -> str:
        return str(self.store.value("files/last_folder", str(Path.home())))

    def set_last_folder(self, folder: str | Path) -> None:
        self.store.setValue("files/last_folder", str(folder))

    # --- window -----------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self.store.value("ui/geometry")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.store.setValue("ui/geometry", geometry)
        self.store.setValue("ui/state", state)
        self.store.sync()

    def window_state(self) -> QByteArray | None:
        value = self.store.value("ui/state")
        return value if isinstance(value, QByteArray) else None
