"""CMFNet Restore desktop app (PyQt6): open a photo, preview, apply, compare, save.

Layout (small modules, Qt only in the widgets):

* ``jobs.py``        plain-Python job descriptions and the work they do (no Qt)
* ``document.py``    the open photo and its restorations (no Qt)
* ``session.py``     the open photo, the choice, the task in effect, what is current (no Qt)
* ``workers.py``     runs jobs on a worker QThread, one at a time, reporting by signals
* ``viewer.py``      zoomable, pannable photo view with a before/after split
* ``widgets.py``     progress panel, welcome page, weights banner
* ``batch.py``       queue of files with per-file status
* ``preferences.py`` tile/overlap/device settings dialog
* ``settings.py``    QSettings-backed settings (recent files, options, geometry)
* ``window.py``      the main window that ties them together
* ``main.py``        ``main(argv)`` for ``cmfnet gui`` and ``cmfnet-gui``
"""
