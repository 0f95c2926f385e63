"""The main window: ties the view, the job runners, the document and the dialogs together.

Everything slow runs as a :class:`~plugin.app.jobs.Job` on one of two
:class:`~plugin.app.workers.JobRunner` threads: ``engine`` (detection,
previews, the full run, the batch, weights import; one at a time) and
``files`` (reading and saving photos; an opened photo's size is read from its
header first, so the engine can prepare its preview while it is decoded).
Slots here only start jobs, each with its own ``on_success`` and, where a failure
is told its own way, ``on_failure`` (the runner calls them), and show their
outcomes. A preview comes in two passes where the photo is large enough: a first
look, then the final one.

What the window works on (the photo, the choice, the task in effect, which preview
is current, whether the result is unsaved) lives in :class:`~plugin.app.session.Session`
(no Qt, tested on its own); what a preview runs at is ``jobs.preview_sides``.

Why this module is still over 500 lines: it is the one place that builds the menus,
the toolbar and the actions and wires each to a slot, and each user action's slot
(open, choose, detect, preview, refine, apply, save, close) is a few lines of
widget updates around a job; split further, one action's path would run through
several files for no gain in what can be tested without Qt.

The task choice is Automatic or a task. ``choice`` is what the user picked;
``task`` is the task in effect (both kept by the session). With Automatic, each
photo opened is first looked at (a DETECT job) and ``task`` becomes its likely
task, sure or not; the toolbar says why ("Looks hazy · 87 %", or unsure
"Hazy 55 % · Blurry 30 %").
A photo that looks fine is left as it is, as ``cmfnet restore`` does: the Task
box says so and Apply is off until a task is picked. A task picked by hand is
for that photo: the next photo opened starts from Automatic again (the photo is
still looked at, as advice). ``detect.py`` says what every front end does.
"""
from __future__ import annotations

import re
from pathlib import Path

from PyQt6.QtCore import QRect, QStandardPaths, Qt, QUrl
from PyQt6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PyQt6.QtWidgets import (QComboBox, QDockWidget, QLabel, QMainWindow, QStackedWidget,
                             QStyle, QToolButton, QVBoxLayout, QWidget)

from cmfnet_core.bundled import APP_ICON, RESOURCES
from cmfnet_core.bundled import SAMPLES as BUNDLED_SAMPLES
from cmfnet_core.i18n import N_, Translated, _
from cmfnet_core.imageio import output_path
from cmfnet_core.tasks import AUTO_TASK, CHOICE_TITLES, CHOICES, TASK_TITLES

from . import help_pages, jobs
from .batch import BatchPanel
from .dialogs import CANCEL, SAVE, ErrorReporter, Prompts
from .document import Document
from .jobs import Job, RestorerCache
from .preferences import PreferencesDialog
from .qimage import to_qimage
from .session import Session
from .settings import DISPLAY_NAME, AppSettings
from .viewer import PhotoView
from .weights_dialog import LightWeightsBar, WeightsDialog
from .widgets import CompareBar, DetectionLabel, ProgressPanel, WeightsBanner, WelcomePage
from .workers import JobRunner

MAX_REGION = 768  # 1:1 previews are capped to this many pixels a side (they run at full cost)
ICON_PATH = APP_ICON
SAMPLES = {"deblur": "deblur_1.png", "dehaze": "haze_1.jpg", "deraindrop": "raindrop_1.jpg"}
PANEL_KINDS = (jobs.PREVIEW, jobs.REGION, jobs.APPLY, jobs.BATCH, jobs.IMPORT)
PANEL_TITLES = Translated({jobs.PREVIEW: N_("Preview"), jobs.REGION: N_("1:1 preview"), jobs.APPLY: N_("Restoring"),
                jobs.BATCH: N_("Batch"), jobs.IMPORT: N_("Importing weights")})
FIRST_LOOK_TITLE, REFINING_TITLE = N_("Preview (first look)"), N_("Preview (refining…)")  # a two-pass preview


class MainWindow(QMainWindow):
    def __init__(self, settings: AppSettings | None = None, cache: RestorerCache | None = None,
                 prompts: Prompts | None = None, warm_up: bool = True, parent=None):
        super().__init__(parent)
        self.settings = settings or AppSettings()
        self.cache = cache or RestorerCache()
        self.prompts = prompts or Prompts(self)
        self.errors = ErrorReporter(self)
        self.session = Session(self.settings.task())  # the photo, the choice, the task in effect
        self.options = self.settings.engine_options()
        self.weights_ok = False
        self._panel_job: Job | None = None
        self._close_after_save = False
        self._closed = False
        self.engine = JobRunner("cmfnet-engine", self)
        self.files = JobRunner("cmfnet-files", self)
        self._build_ui()
        self._connect_runners()
        self.setAcceptDrops(True)
        self.welcome.sample_button.setVisible(self.sample_path().exists())
        self.setWindowTitle(DISPLAY_NAME)
        if ICON_PATH.exists():
            self.setWindowIcon(QIcon(str(ICON_PATH)))
        self.resize(1200, 800)
        if geometry := self.settings.geometry():
            self.restoreGeometry(geometry)
        if state := self.settings.window_state():
            self.restoreState(state)
        self._refresh_weights()
        self._refresh_recent()
        self._update_actions()
        if warm_up:
            self.warm_up()

    # the session's state, read by the slots here (and by tests)
    @property
    def choice(self) -> str:
        return self.session.choice

    @property
    def task(self) -> str:
        return self.session.task

    @property
    def document(self) -> Document | None:
        return self.session.document

    # ================================================================ building
    def _build_ui(self) -> None:
        self.view = PhotoView()
        self.compare = CompareBar()
        self.welcome = WelcomePage()
        self.banner = WeightsBanner()
        self.light_bar = LightWeightsBar()
        self.weights_dialog: WeightsDialog | None = None
        viewer_page = QWidget()
        page_layout = QVBoxLayout(viewer_page)
        page_layout.setContentsMargins(0, 0, 0, 0)
        page_layout.setSpacing(0)
        page_layout.addWidget(self.view, 1)
        page_layout.addWidget(self.compare)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(viewer_page)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.light_bar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.progress = ProgressPanel()
        self.zoom_label = QLabel()
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.zoom_label)

        self.batch = BatchPanel(self.engine, self._batch_job)
        self.batch_dock = QDockWidget(_("Batch"), self)
        self.batch_dock.setObjectName("batchDock")
        self.batch_dock.setWidget(self.batch)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.batch_dock)
        self.batch_dock.hide()

        self.task_combo = QComboBox()
        for choice in CHOICES:
            self.task_combo.addItem(CHOICE_TITLES[choice], choice)
        self.task_combo.setCurrentIndex(CHOICES.index(self.choice))
        self.task_combo.setToolTip(_("What to restore: blur, haze or raindrops; Automatic finds "
                                   "out for each photo"))
        self.detection_label = DetectionLabel()
        self.weights_label = QLabel()
        self.weights_label.setContentsMargins(6, 0, 6, 0)
        self.compare_button = QToolButton()
        self.compare_button.setText(_("Hold to See Original"))
        self.compare_button.setToolTip(_("Shows the original while pressed (or hold B)"))
        self.compare_button.pressed.connect(lambda: self.view.set_show_before(True))
        self.compare_button.released.connect(lambda: self.view.set_show_before(False))

        self._create_actions()
        self._create_menus_and_toolbar()

        self.welcome.open_requested.connect(self.open_dialog)
        self.welcome.path_requested.connect(lambda p: self.open_paths([p]))
        self.welcome.sample_requested.connect(self.open_sample)
        self.banner.import_requested.connect(self.import_weights)
        self.light_bar.download_requested.connect(self.show_weights)
        self.compare.split_changed.connect(self.view.set_split)
        self.compare.strength_changed.connect(self._set_strength)
        self.view.split_changed.connect(self.compare.set_split_silently)
        self.view.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.view.region_selected.connect(self.preview_region)
        self.view.view_settled.connect(self.refine_view)
        self.progress.cancel_requested.connect(self.cancel_run)
        self.task_combo.currentIndexChanged.connect(lambda i: self.choose(CHOICES[i]))
        self.batch.open_requested.connect(lambda p: self.open_paths([p]))
        self.batch.finished.connect(lambda: self.statusBar().showMessage(_("Batch finished"), 5000))

    def _action(self, text: str, slot, shortcut=None, icon=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        bare = re.sub(r"\s*\(&\w\)", "", text)  # a translation's mnemonic: "打开(&O)…"
        if bare != text:  # the toolbar would show "打开(O)": it shows "打开", as "&Open…" shows "Open"
            action.setIconText(bare.replace("…", "").strip())
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        return action

    def _create_actions(self) -> None:
        sp = QStyle.StandardPixmap
        self.open_action = self._action(_("&Open…"), self.open_dialog, QKeySequence.StandardKey.Open,
                                        sp.SP_DialogOpenButton, _("Open one photo, or several for a batch"))
        self.save_action = self._action(_("&Save"), self.save, QKeySequence.StandardKey.Save,
                                        sp.SP_DialogSaveButton, _("Save as NAME.TASK.EXT beside the original"))
        self.save_as_action = self._action(_("Save &As…"), self.save_as, QKeySequence.StandardKey.SaveAs)
        self.export_action = self._action(_("&Export a Copy…"), self.export, "Ctrl+E",
                                          tip=_("Write a copy in another place or format"))
        self.quit_action = self._action(_("&Quit"), self.close, QKeySequence.StandardKey.Quit)
        self.apply_action = self._action(_("&Apply Full Resolution"), self.apply, "Ctrl+Return",
                                         sp.SP_MediaPlay, _("Restore the whole photo at full resolution"))
        self.cancel_action = self._action(_("&Cancel"), self.cancel_run, "Esc", sp.SP_BrowserStop,
                                          _("Stop after the current tile"))
        self.region_action = self._action(_("Preview &Region (drag)"), self.view.set_region_mode, "R",
                                          tip=_("Drag a rectangle on the photo to see it restored at 1:1"))
        self.region_action.setCheckable(True)
        self.viewport_action = self._action(_("Preview &Visible Area 1:1"), self.preview_viewport, "V",
                                            tip=_("Restore what is in view at full resolution"))
        self.viewport_action.setIconText(_("Preview View 1:1"))
        self.region_action.setIconText(_("Preview Region…"))
        self.refresh_action = self._action(_("Refresh &Thumbnail Preview"), self.request_preview, "F5")
        self.weights_action = self._action(_("&Weights…"), self.show_weights, icon=sp.SP_DriveNetIcon,
                                           tip=_("Which weights each task uses; download the "
                                                 "authors' full-size weights, or import a file"))
        self.prefs_action = self._action(_("&Preferences…"), self.edit_preferences,
                                         QKeySequence.StandardKey.Preferences)
        self.fit_action = self._action(_("&Fit"), self.view.fit, "Ctrl+0", tip=_("Fit the photo in the window"))
        self.actual_action = self._action(_("&100 %"), self.view.actual_size, "Ctrl+1",
                                          tip=_("One photo pixel per screen pixel"))
        self.zoom_in_action = self._action(_("Zoom &In"), lambda: self.view.zoom_by(1.25),
                                           QKeySequence.StandardKey.ZoomIn)
        self.zoom_out_action = self._action(_("Zoom &Out"), lambda: self.view.zoom_by(0.8),
                                            QKeySequence.StandardKey.ZoomOut)
        self.batch_action = self.batch_dock.toggleViewAction()
        self.batch_action.setText(_("&Batch Queue"))
        self.about_action = self._action(_("&About"), self.about)
        self.usage_action = self._action(_("&Usage"), self.show_usage,
                                         tip=_("What each task does and how to run it (the README)"))
        self.model_card_action = self._action(_("&Model Card"), self.show_model_card,
                                              tip=_("How the bundled weights were trained and how well they do"))

    def _create_menus_and_toolbar(self) -> None:
        menu = self.menuBar().addMenu(_("&File"))
        menu.addAction(self.open_action)
        self.recent_menu = menu.addMenu(_("Open &Recent"))
        self.recent_menu.aboutToShow.connect(self._refresh_recent)
        menu.addSeparator()
        for action in (self.save_action, self.save_as_action, self.export_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.quit_action)

        menu = self.menuBar().addMenu(_("&View"))
        for action in (self.fit_action, self.actual_action, self.zoom_in_action, self.zoom_out_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.batch_action)

        menu = self.menuBar().addMenu(_("&Restore"))
        task_menu = menu.addMenu(_("&Task"))
        self.task_actions = QActionGroup(self)
        for choice in CHOICES:
            action = task_menu.addAction(CHOICE_TITLES[choice])
            action.setCheckable(True)
            action.setData(choice)
            action.setChecked(choice == self.choice)
            action.triggered.connect(lambda _checked=False, c=choice: self.choose(c))
            self.task_actions.addAction(action)
        menu.addAction(self.refresh_action)
        menu.addAction(self.region_action)
        menu.addAction(self.viewport_action)
        menu.addSeparator()
        menu.addAction(self.apply_action)
        menu.addAction(self.cancel_action)
        menu.addSeparator()
        menu.addAction(self.weights_action)
        menu.addAction(self.prefs_action)

        menu = self.menuBar().addMenu(_("&Help"))
        for action in (self.usage_action, self.model_card_action, self.about_action):
            menu.addAction(action)

        bar = self.addToolBar(_("Main"))
        bar.setObjectName("mainToolbar")
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.addAction(self.open_action)
        bar.addAction(self.save_action)
        bar.addSeparator()
        bar.addWidget(QLabel(_(" Task: ")))
        bar.addWidget(self.task_combo)
        bar.addWidget(self.detection_label)
        bar.addWidget(self.weights_label)
        bar.addAction(self.weights_action)
        bar.addSeparator()
        bar.addAction(self.region_action)
        bar.addAction(self.viewport_action)
        bar.addAction(self.apply_action)
        bar.addSeparator()
        bar.addWidget(self.compare_button)
        bar.addSeparator()
        bar.addAction(self.fit_action)
        bar.addAction(self.actual_action)

    def _connect_runners(self) -> None:
        for runner in (self.engine, self.files):
            runner.started.connect(self._on_started)
            runner.progress.connect(self._on_progress)
            runner.succeeded.connect(self._on_succeeded)
            runner.failed.connect(self._on_failed)
            runner.cancelled.connect(self._on_cancelled)
            runner.finished.connect(self._on_finished)

    # ================================================================ opening
    def open_dialog(self) -> None:
        paths = self.prompts.open_files(self.settings.last_folder())
        if paths:
            self.open_paths(paths)

    def open_paths(self, paths) -> None:
        """Open one photo; several also fill the batch queue (the first is shown)."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        if len(paths) > 1:
            self.batch.add_files(paths)
            self.batch_dock.show()
        self.open_path(paths[0])

    def open_path(self, path: str | Path) -> Job:
        path = Path(path)
        self.settings.set_last_folder(path.parent)
        self.statusBar().showMessage(_("Opening {name}…").format(name=path.name))
        # the header says the size in milliseconds: the engine prepares this photo's first
        # look while the files thread decodes it (seconds for a large photo)
        self.files.submit(Job(jobs.SIZE, jobs.size_work(path), context={"path": path},
                              on_success=self._on_sized))
        return self.files.submit(Job(jobs.READ, jobs.read_work(path), context={"path": path},
                                     on_success=self._on_read, on_failure=self._on_read_failed))

    def _on_read_failed(self, job: Job, title: str, message: str) -> None:
        message = _("{name} could not be opened.").format(name=Path(job.context["path"]).name) + f"\n\n{message}"
        self._report(title, message)

    def _on_sized(self, job: Job, size) -> None:
        if size is not None:
            self.warm_up(photo=size)

    def _on_read(self, job: Job, photo) -> None:
        if self.session.unsaved:
            if not self._resolve_unsaved():
                return
        self.engine.cancel_kind(jobs.DETECT, jobs.PREVIEW, jobs.REGION, jobs.APPLY)
        for warming in self.engine.jobs():  # one job at a time: it would hold this photo back
            if warming.kind == jobs.WARMUP and warming.context.get("photo") != photo.pixels.shape[:2]:
                self.engine.cancel(warming)  # it stops between shapes
        path = job.context["path"]
        if self.session.open(Document(path=path, pixels=photo.pixels, info=photo.info)):
            self.settings.set_task(AUTO_TASK)  # a task picked by hand was for the previous photo
        self.view.set_photo(to_qimage(photo.pixels))
        self.view.hide_band()
        self.compare.strength.setValue(100)
        self.stack.setCurrentIndex(1)
        self.settings.add_recent_file(path)
        width, height = self.document.size
        notes = "".join(f" — {note}" for note in photo.info.notes)  # e.g. animated: first frame only
        self.statusBar().showMessage(_("{name}: {width} × {height}{notes}").format(name=path.name, width=width, height=height, notes=notes), 10000 if notes else 5000)
        self._update_title()
        if self.choice == AUTO_TASK:
            self.detect()  # the preview follows, with the task the photo needs
        else:
            self.request_preview()
            self.detect()  # advice only: the task picked by hand stays
        self._update_actions()

    def sample_path(self) -> Path:
        return BUNDLED_SAMPLES / SAMPLES[self.task]

    def open_sample(self) -> None:
        self.open_paths([self.sample_path()])

    def _resolve_unsaved(self) -> bool:
        """Ask about the unsaved result; False if the user cancels."""
        answer = self.prompts.unsaved_result(self.document.path.name)
        if answer == SAVE:
            self.save()  # the save job holds its own copy of the pixels
        return answer != CANCEL

    def _refresh_recent(self) -> None:
        recent = self.settings.recent_files()
        self.recent_menu.clear()
        for path in recent:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.setEnabled(Path(path).exists())
            action.triggered.connect(lambda _checked=False, p=path: self.open_paths([p]))
        if recent:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction(_("Clear List"), self._clear_recent)
        self.recent_menu.setEnabled(bool(recent))
        self.welcome.set_recent(recent)

    def _clear_recent(self) -> None:
        self.settings.clear_recent_files()
        self._refresh_recent()

    def dragEnterEvent(self, event) -> None:
        if self._dropped_paths(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        paths = self._dropped_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    @staticmethod
    def _dropped_paths(mime) -> list[Path]:
        if not mime.hasUrls():
            return []
        return [Path(url.toLocalFile()) for url in mime.urls()
                if isinstance(url, QUrl) and url.isLocalFile() and Path(url.toLocalFile()).is_file()]

    # ================================================================ task and weights
    def choose(self, choice: str) -> None:
        """The user picked Automatic or a task (the combo, the Task menu, the command line)."""
        if choice == self.choice:
            return
        task = self.session.task_for(choice)
        doc = self.document
        if task != self.task and self.session.unsaved \
                and not self.prompts.discard_result(doc.path.name):
            self._show_choice()  # back to what it was
            return
        self.session.choice = choice
        self.settings.set_task(choice)
        if task != self.task:
            self._switch_task(task)
        else:
            self._show_choice()
            if choice == AUTO_TASK and doc is not None and doc.detection is None \
                    and not any(j.kind == jobs.DETECT for j in self.engine.jobs()):
                self.detect()
            elif self.session.needs_preview():
                self.request_preview()  # e.g. a task picked for a photo Automatic left alone
        self._update_actions()

    def _switch_task(self, task: str) -> None:
        """Make ``task`` the task in effect: what was made with the old one is dropped."""
        doc = self.document
        self.session.set_task(task)
        self._show_choice()
        warming = any(j.kind == jobs.WARMUP for j in self.engine.jobs())
        self.engine.cancel_kind(jobs.PREVIEW, jobs.REGION, jobs.APPLY, jobs.WARMUP)
        if warming and doc is None:
            self.warm_up()  # for the task now in effect; with a photo, its preview builds it
        if doc is not None:  # the session dropped what was made with the old task
            self.view.set_after(None)
            self.view.clear_patches()
        self._refresh_weights()
        self._update_title()
        self._update_actions()
        self.request_preview()

    def _show_choice(self) -> None:
        """The combo, the Task menu and the detection label as ``choice`` and ``task`` are."""
        detection = self.session.detection
        automatic = self.session.automatic
        chose = self.session.automatic_chose()
        self.task_combo.blockSignals(True)  # showing the choice is not choosing
        self.task_combo.setCurrentIndex(CHOICES.index(self.choice))
        self.task_combo.setItemText(0, _("Automatic: leave as it is") if self.session.leaves_alone() else
                                    _("Automatic: {task}").format(task=TASK_TITLES[self.task]) if chose
                                    else _("Automatic"))
        self.task_combo.blockSignals(False)
        for action in self.task_actions.actions():
            action.setChecked(action.data() == self.choice)
        if detection is not None:
            self.detection_label.show_detection(detection, automatic, TASK_TITLES[self.task])

    # ================================================================ detection
    def detect(self) -> Job | None:
        """Find out what the open photo needs (off the GUI thread, like the engine's work)."""
        doc = self.document
        if doc is None:
            return None
        self.engine.cancel_kind(jobs.DETECT)
        self.detection_label.looking()
        return self.engine.submit(Job(jobs.DETECT, jobs.detect_work(doc.pixels), context={"doc": doc},
                                      on_success=self._on_detected, on_failure=self._on_detect_failed))

    def _on_detected(self, job: Job, detection) -> None:
        doc = self.document
        if doc is not job.context["doc"]:
            return
        doc.detection = detection
        if self.choice != AUTO_TASK:
            self._show_choice()
            return
        task = detection.likely_task
        if task is None:
            self.statusBar().showMessage(_("{summary} — Automatic leaves it as it is; "
                                           "pick a task to restore it anyway").format(summary=detection.summary()), 10000)
            self.engine.cancel_kind(jobs.PREVIEW, jobs.REGION)  # nothing will run: nothing to preview
        elif detection.unsure:
            self.statusBar().showMessage(_("Not sure: {odds} — {task} is preselected; pick another "
                                           "task to change it").format(odds=detection.odds(), task=TASK_TITLES[task]), 10000)
        if task is not None and task != self.task:
            self._switch_task(task)  # a fresh photo: nothing made with the old task to lose
            return
        self._show_choice()
        if self.session.needs_preview():
            self.request_preview()

    def _on_detect_failed(self, job: Job, title: str, message: str) -> None:
        """Without the detector the photo is still shown and previewed, with the task in effect:
        no dialog for advice that could not be had."""
        if self.document is not job.context["doc"]:
            return
        reason = message.splitlines()[0]
        self.detection_label.unavailable(reason)
        self.statusBar().showMessage(_("Automatic is not available: {reason}").format(reason=reason), 10000)
        if self.session.automatic and self.session.needs_preview():
            self.request_preview()

    def _refresh_weights(self) -> None:
        label, tip, ok = jobs.describe_weights(self.task)
        self.weights_ok = ok
        self.weights_label.setText(_("Weights: <i>{label}</i>").format(label=label) if ok
                                   else f"<b style='color:#a33'>{label}</b>")
        self.weights_label.setToolTip(tip)
        if ok:
            self.banner.hide()
        else:
            self.banner.show_missing(TASK_TITLES[self.task])

    def warm_up(self, photo: tuple[int, int] | None = None) -> Job | None:
        """Build in the background what the first preview runs.

        Without a photo (at start, while the user picks one): typical photos' previews, their
        first looks first. With the (height, width) of a photo being opened: only its first
        look's model, built while the photo is decoded; its final pass follows the first look
        at once, so warming that too would only hold the first look back. With Automatic,
        the detector first (it runs first on every photo); then, at start, the task in
        effect; for a photo, nothing more: its task is not known until the detector has looked.
        A new warm-up replaces one under way (which stops between shapes): the engine runs
        one job at a time, and the old one is for other photos or another task.
        """
        if not self.weights_ok:
            return None
        self.engine.cancel_kind(jobs.WARMUP)
        if photo is None:
            work = jobs.warmup_work(self.cache, self.choice, self.options, fallback=self.task)
        else:
            work = jobs.warmup_work(self.cache, self.choice, self.options, photos=[photo],
                                    opening=True, fallback=None)
        return self.engine.submit(Job(jobs.WARMUP, work, context={"task": self.choice, "photo": photo},
                                      on_failure=self._on_warm_up_failed))

    def _on_warm_up_failed(self, job: Job, title: str, message: str) -> None:
        # the first real job reports it in a dialog, with its context
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 10000)

    def import_weights(self) -> None:
        source = self.prompts.weights_file(TASK_TITLES[self.task])
        if source:
            self.engine.submit(Job(jobs.IMPORT, jobs.import_work(self.task, source),
                                   context={"task": self.task, "source": source},
                                   on_success=self._on_imported))

    def show_weights(self) -> WeightsDialog:
        """The Weights dialog (one per window; closing it hides it, a download goes on)."""
        if self.weights_dialog is None:
            self.weights_dialog = WeightsDialog(self.prompts, self)
            self.weights_dialog.weights_changed.connect(self._on_weights_changed)
        self.weights_dialog.refresh()
        self.weights_dialog.show()
        self.weights_dialog.raise_()
        self.weights_dialog.activateWindow()
        return self.weights_dialog

    def _on_weights_changed(self, task: str) -> None:
        self.cache.clear()
        self._refresh_weights()
        self._update_actions()
        if task == self.task and self.session.needs_preview():
            self.request_preview()

    def _on_imported(self, job: Job, path) -> None:
        self.cache.clear()
        self._refresh_weights()
        self.statusBar().showMessage(_("Imported {name} for "
                                     "{task}").format(name=Path(job.context['source']).name, task=TASK_TITLES[job.context['task']]), 8000)
        self._update_actions()
        if self.session.needs_preview():
            self.request_preview()

    def edit_preferences(self) -> None:
        dialog = PreferencesDialog(self.options, self, language=self.settings.language(), runner=self.files)
        if dialog.exec():
            self.settings.set_language(dialog.chosen_language())  # from the next start on
            self.options = dialog.options()
            self.settings.set_engine_options(self.options)

    # ================================================================ previews
    def request_preview(self) -> Job | None:
        """Restore a thumbnail of the photo for the current task, replacing any preview
        still to come: a first look at low resolution, shown as soon as it is ready, then the
        final one in its place (:func:`~plugin.app.jobs.preview_sides`; a small photo has
        one pass). Two jobs, so a task change, a new photo or a new request cancels the
        final pass before it starts. Returns the final pass's job."""
        doc = self.document
        if doc is None or not self.weights_ok or self.session.leaves_alone():
            return None
        self.engine.cancel_kind(jobs.PREVIEW)
        sides = jobs.preview_sides(*doc.pixels.shape[:2], final_side=self._screen_long_side())
        if self.session.has_preview():
            # a refresh, or the final pass after a stopped one: what is on show stays until then
            sides = sides[-1:]
        titles = (_(FIRST_LOOK_TITLE), _(REFINING_TITLE)) if len(sides) == 2 else (PANEL_TITLES[jobs.PREVIEW],)
        for side, title in zip(sides, titles):
            work = jobs.preview_work(self.cache, self.task, self.options, doc.pixels, long_side=side)
            job = self.engine.submit(Job(jobs.PREVIEW, work, context={
                "doc": doc, "task": self.task, "final": side == sides[-1], "title": title},
                on_success=self._on_preview, on_failure=self._on_preview_failed))
        return job

    def _on_preview(self, job: Job, result) -> None:
        doc = self.document
        if job.token.cancelled or not self.session.is_current(job.context["doc"], job.context["task"]):
            return  # superseded while its outcome was on its way
        self.session.set_preview(result, job.context["final"])
        if doc.result is None:
            self.view.set_after(to_qimage(result))  # drawn over the whole photo, whatever its size
        shown = f"{result.shape[1]} × {result.shape[0]}"
        if job.context["final"]:
            self.statusBar().showMessage(_("{task} preview at {size}, the screen's resolution — drag "
                                           "the split or hold B to compare; Apply restores full "
                                           "resolution").format(task=TASK_TITLES[self.task], size=shown), 8000)
            self.refine_view()
        else:
            self.statusBar().showMessage(_("{task} preview: a first look at {size}, Before shown at the "
                                           "same resolution — refining…").format(task=TASK_TITLES[self.task],
                                                                                  size=shown))

    def _on_preview_failed(self, job: Job, title: str, message: str) -> None:
        self.engine.cancel_kind(jobs.PREVIEW)  # its final pass would fail the same way: one dialog
        self._report(title, message)

    def preview_region(self, rect: QRect) -> Job | None:
        self.region_action.setChecked(False)
        self.view.set_region_mode(False)
        doc = self.document
        if doc is None or not self.weights_ok or rect.isEmpty():
            self.view.hide_band()
            return None
        rect = _cap(rect, MAX_REGION)
        box = (rect.x(), rect.y(), rect.width(), rect.height())
        work = jobs.region_work(self.cache, self.task, self.options, doc.pixels, box)
        return self.engine.submit(Job(jobs.REGION, work, context={"doc": doc, "task": self.task,
                                                                  "rect": QRect(rect)},
                                      on_success=self._on_region, on_failure=self._on_region_failed))

    def _screen_long_side(self) -> int:
        """The photo's long side in device pixels as the view fits it (its preview's size)."""
        doc, view = self.document, self.view
        if doc is None:
            return jobs.PREVIEW_LONG_SIDE
        rect = view.item.image_rect()
        fit = min(view.viewport().width() / max(1.0, rect.width()),
                  view.viewport().height() / max(1.0, rect.height()))
        scale = max(fit, view.scale_factor()) * view.devicePixelRatioF()
        return int(min(max(doc.pixels.shape[:2]), -(-max(doc.pixels.shape[:2]) * scale // 1)))

    def refine_view(self) -> Job | None:
        """Restore what is in view at the resolution the screen shows it (1:1 from 100 %),
        where the restoration on show is coarser: exactly what Apply will write there at 1:1.
        Until it comes, the view shows Before at the same coarser resolution."""
        doc = self.document
        if doc is None or not self.weights_ok or not self.session.can_refine():
            return None
        need = min(1.0, self.view.display_scale())
        if self.view.visible_image_rect().isEmpty() or self.view.after_scale() >= need * 0.99:
            return None
        rect = self.view.missing_rect(need)  # what earlier refinements left: they are reused
        for job in self.engine.jobs():
            if job.kind == jobs.REGION and job.context.get("view"):
                self.engine.cancel(job)  # superseded: the view moved on
        box = (rect.x(), rect.y(), rect.width(), rect.height())
        scale = "1:1" if need >= 1.0 else f"{need * 100:.0f} %"
        context = {"doc": doc, "task": self.task, "rect": QRect(rect), "view": scale}
        split = (self.view.item.image_rect().width() * self.view.item.split, rect.center().y())

        def partial(region, finished):  # worker thread: the progress signal that follows shows it
            context["partial"] = (region, finished)

        work = jobs.view_work(self.cache, self.task, self.options, doc.pixels, box, need,
                              first=split, partial=partial)
        self.view.clear_partial()
        return self.engine.submit(Job(jobs.REGION, work, context=context, on_success=self._on_region,
                                      on_failure=self._on_region_failed))

    def preview_viewport(self) -> Job | None:
        return self.preview_region(self.view.visible_image_rect())

    def _on_region(self, job: Job, result) -> None:
        self.view.hide_band()
        doc = self.document
        if not self.session.is_current(job.context["doc"], job.context["task"]) or doc.result is not None:
            return
        self.view.add_patch(job.context["rect"], to_qimage(result))
        self.view.clear_partial()
        if job.context.get("view"):
            self.statusBar().showMessage(_("{task} preview of the visible area at {size} — the "
                                           "screen's resolution").format(task=TASK_TITLES[self.task],
                                                                         size=job.context["view"]), 8000)

    def _on_region_failed(self, job: Job, title: str, message: str) -> None:
        self.view.hide_band()
        self._report(title, message)

    # ================================================================ full run
    def apply(self) -> Job | None:
        doc = self.document
        if doc is None or not self.weights_ok:
            return None
        self.engine.cancel_kind(jobs.PREVIEW, jobs.REGION, jobs.APPLY)
        work = jobs.restore_work(self.cache, self.task, self.options, doc.pixels)
        job = self.engine.submit(Job(jobs.APPLY, work, context={"doc": doc, "task": self.task},
                                     on_success=self._on_applied))
        self.statusBar().showMessage(_("{task} at full resolution — you can keep "
                                       "zooming and comparing; Esc cancels").format(task=TASK_TITLES[self.task]))
        self._update_actions()
        return job

    def _on_applied(self, job: Job, result) -> None:
        doc = self.document
        if not self.session.is_current(job.context["doc"], job.context["task"]):
            return
        doc.set_result(result, self.task)
        self.view.set_after(to_qimage(result))
        self.view.clear_patches()
        self.statusBar().showMessage(_("Restored at full resolution — Save (Ctrl+S) writes "
                                       "{path}").format(path=self.default_output()), 10000)
        self.light_bar.offer(self.task)
        self._update_title()

    def _batch_job(self, path: Path) -> Job:
        choice = self.batch.choice()  # the batch's own: not the task picked for the open photo
        if choice == AUTO_TASK:  # each photo with what it needs
            work = jobs.auto_batch_work(self.cache, self.options, path)
        else:
            work = jobs.batch_work(self.cache, choice, self.options, path)
        return Job(jobs.BATCH, work, label=path.name, context={"path": path, "task": choice},
                   on_failure=lambda job, title, message: None)  # shown in the batch table, row by row

    def cancel_run(self) -> None:
        job = self._panel_job
        if job is None:
            return
        if job.kind == jobs.BATCH:
            self.batch.cancel()
        elif job.kind == jobs.PREVIEW:
            self.engine.cancel_kind(jobs.PREVIEW)  # the first look and the final pass after it
        else:
            self.engine.cancel(job)
        self.progress.cancelling()

    def _set_strength(self, strength: float) -> None:
        self.view.set_strength(strength)
        if self.document is not None:
            self.document.strength = strength
            self._update_title()

    # ================================================================ saving
    def default_output(self) -> Path | None:
        doc = self.document
        if doc is None or doc.result is None:
            return None
        return doc.saved_to or output_path(doc.path, doc.result_task, self._output_folder(doc.path))

    @staticmethod
    def _output_folder(source: Path) -> Path | None:
        """Beside the original, except for the bundled samples (the install may be read-only)."""
        if RESOURCES in source.resolve().parents:
            pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
            return Path(pictures) if pictures and Path(pictures).is_dir() else Path.home()
        return None

    def save(self) -> Job | None:
        doc = self.document
        if doc is None or doc.result is None:
            return None
        target = self.default_output()
        return self._write(target, overwrite=doc.saved_to is not None, mark=True)

    def save_as(self) -> Job | None:
        return self._save_dialog(_("Save restored photo as"), mark=True)

    def export(self) -> Job | None:
        return self._save_dialog(_("Export a copy"), mark=False)

    def _save_dialog(self, title: str, mark: bool) -> Job | None:
        doc = self.document
        if doc is None or doc.result is None:
            return None
        chosen = self.prompts.save_path(self.default_output(), title)
        if not chosen:
            return None
        path = Path(chosen)
        if path.exists() and path.resolve() == doc.path.resolve():
            if not self.prompts.confirm_overwrite_original(doc.path):
                return None
        # the file dialog has already asked about replacing any other existing file
        return self._write(path, overwrite=path.exists(), mark=mark)

    def _write(self, path: Path, overwrite: bool, mark: bool) -> Job:
        doc = self.document
        self.statusBar().showMessage(_("Saving {name}…").format(name=path.name))
        work = jobs.save_work(path, doc.output(), doc.info, overwrite)
        return self.files.submit(Job(jobs.SAVE, work, context={"doc": doc, "mark": mark,
                                                               "strength": doc.strength},
                                     on_success=self._on_saved, on_failure=self._on_save_failed))

    def _on_saved(self, job: Job, path) -> None:
        doc = job.context["doc"]
        if job.context["mark"] and doc.strength == job.context["strength"]:
            doc.mark_saved(Path(path))
        self.statusBar().showMessage(_("Saved {path}").format(path=path), 10000)
        self._update_title()

    def _on_save_failed(self, job: Job, title: str, message: str) -> None:
        self._close_after_save = False
        title = _("Could not save")
        self._report(title, message)

    # ================================================================ runner signals
    def _on_started(self, job: Job) -> None:
        if job.kind in PANEL_KINDS:
            self._panel_job = job
            self.progress.start(job.context.get("title") or PANEL_TITLES[job.kind])

    def _on_progress(self, job: Job, done: int, total: int) -> None:
        if job is self._panel_job:
            self.progress.report(done, total)
        streamed = job.context.pop("partial", None) if job.kind == jobs.REGION else None
        if streamed is not None and job.context["doc"] is self.document and not job.token.cancelled:
            self.view.set_partial(job.context["rect"], *streamed)  # the finished tiles, split line first

    def _on_succeeded(self, job: Job, result) -> None:
        """After the job's own ``on_success`` (the runner calls it first)."""
        if self._closed:  # outcomes still queued when the window closed
            return
        self._tell_engine_notes()

    def _tell_engine_notes(self) -> None:
        """The engine's notes about the precision it runs (say, the float path because int8
        lost too much on these weights), after what the job itself said."""
        for note in self.cache.take_notes():
            said = self.statusBar().currentMessage()
            self.statusBar().showMessage(f"{said} — {note}" if said else note, 15000)

    def _on_failed(self, job: Job, title: str, message: str) -> None:
        """A job without its own ``on_failure`` (the runner calls that one) fails: a dialog."""
        if self._closed or job.on_failure is not None:
            return
        self._report(title, message)

    def _report(self, title: str, message: str) -> None:
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 10000)
        self.errors.show(title, message)

    def _on_cancelled(self, job: Job) -> None:
        if job.kind == jobs.REGION:
            self.view.hide_band()
        if job.kind == jobs.PREVIEW and job.context["final"] \
                and self.session.is_current(job.context["doc"], job.context["task"]) \
                and self.session.stopped_at_first_look() \
                and not any(j is not job and j.kind == jobs.PREVIEW for j in self.engine.jobs()):
            self.statusBar().showMessage(_("Preview stopped at the first look — Refresh Thumbnail "
                                         "Preview (F5) makes the final one"), 8000)
        if job.kind in (jobs.APPLY, jobs.BATCH):
            self.statusBar().showMessage(_("Cancelled — nothing was changed"), 5000)

    def _on_finished(self, job: Job) -> None:
        if job is self._panel_job:
            self._panel_job = None
            self.progress.finish()
        self._update_actions()
        if job.kind == jobs.SAVE and self._close_after_save and not self.files.is_busy():
            self.close()

    # ================================================================ state
    def _update_actions(self) -> None:
        doc = self.document
        has_doc = doc is not None
        has_result = has_doc and doc.result is not None
        running = any(j.kind == jobs.APPLY for j in self.engine.jobs())
        # with Automatic, the task is not known until the photo has been looked at
        detecting = self.choice == AUTO_TASK and any(j.kind == jobs.DETECT for j in self.engine.jobs())
        can_run = has_doc and self.weights_ok and not detecting and not self.session.leaves_alone()
        self.apply_action.setEnabled(can_run and not running)
        self.region_action.setEnabled(can_run and not has_result)  # the result is the real thing
        self.viewport_action.setEnabled(can_run and not has_result)
        self.compare_button.setEnabled(has_doc)
        for action in (self.fit_action, self.actual_action, self.zoom_in_action, self.zoom_out_action):
            action.setEnabled(has_doc)
        self.refresh_action.setEnabled(can_run)
        self.cancel_action.setEnabled(self.engine.is_busy())
        for action in (self.save_action, self.save_as_action, self.export_action):
            action.setEnabled(has_result)
        self.compare.setEnabled(has_doc)
        self.zoom_label.setVisible(has_doc)
        why = "" if self.weights_ok else _(" (import weights first)")
        if self.session.leaves_alone():
            why = _(" (Automatic leaves a photo that looks fine as it is: pick a task to restore it)")
        self.apply_action.setToolTip(_("Restore the whole photo at full resolution") + why)

    def _update_title(self) -> None:
        doc = self.document
        if doc is None:
            self.setWindowTitle(DISPLAY_NAME)
            return
        self.setWindowTitle(f"{doc.path.name}[*] — {TASK_TITLES[self.task]} — {DISPLAY_NAME}")
        self.setWindowModified(doc.has_unsaved_result)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_B and not event.isAutoRepeat():
            self.view.set_show_before(True)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_B and not event.isAutoRepeat():
            self.view.set_show_before(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def about(self) -> None:
        from PyQt6.QtWidgets import QMessageBox

        QMessageBox.about(self, _("About {name}").format(name=DISPLAY_NAME), help_pages.about_html(DISPLAY_NAME))

    def show_usage(self) -> help_pages.DocumentDialog:
        return self._document(_("{name}: usage").format(name=DISPLAY_NAME), help_pages.usage_markdown())

    def show_model_card(self) -> help_pages.DocumentDialog:
        path = help_pages.model_card_path()
        return self._document(_("{name}: model card").format(name=DISPLAY_NAME), help_pages.model_card_markdown(),
                              path.parent)

    def _document(self, title: str, markdown: str, folder: Path | None = None) -> help_pages.DocumentDialog:
        dialog = help_pages.DocumentDialog(title, markdown, folder, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    # ================================================================ closing
    def closeEvent(self, event) -> None:
        doc = self.document
        if not self._closed and any(j.kind == jobs.SAVE for j in self.files.jobs()):
            self._close_after_save = True  # close once the photo is safely written
            event.ignore()
            return
        if not self._closed and doc is not None and doc.has_unsaved_result:
            answer = self.prompts.unsaved_result(doc.path.name)
            if answer == CANCEL:
                event.ignore()
                return
            if answer == SAVE:
                self._close_after_save = True
                self.save()
                event.ignore()
                return
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.hide()  # feels instant; the running tile finishes in the background
        self.shutdown()
        event.accept()

    def shutdown(self) -> None:
        """Cancel whatever runs (it stops within one tile) and stop the worker threads."""
        if self._closed:
            return
        self._closed = True
        self.engine.shutdown()
        self.files.shutdown()
        if self.weights_dialog is not None:
            self.weights_dialog.shutdown()


def _cap(rect: QRect, side: int) -> QRect:
    """``rect`` shrunk about its centre to at most ``side`` x ``side``."""
    width, height = min(rect.width(), side), min(rect.height(), side)
    centre = rect.center()
    return QRect(centre.x() - width // 2, centre.y() - height // 2, width, height).intersected(rect)
