"""The app's language: our gettext catalogue for its own words, Qt's for Qt's.

Qt's standard dialogs and buttons (file dialogs, Save / Cancel / Discard, context
menus) carry their own words, translated in the ``qtbase_<lang>.qm`` files PyQt6
ships; a QTranslator loads the one of the language the rest of the app speaks.
"""
from __future__ import annotations

from PyQt6.QtCore import QLibraryInfo, QLocale, QTranslator
from PyQt6.QtWidgets import QApplication

from cmfnet_core import i18n


def qt_translations_dir() -> str:
    return QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)


def install_translations(app: QApplication, preference: str | None = None) -> str:
    """Speak ``preference`` (a language code, or ``i18n.SYSTEM``) or the system's language:
    our catalogue and Qt's own. Returns the language chosen."""
    for old in app.findChildren(QTranslator, "cmfnetQtTranslator"):
        app.removeTranslator(old)
        old.deleteLater()
    language = i18n.set_language(preference)
    # Qt picks plural forms, number formats and the layout direction from the default locale
    QLocale.setDefault(QLocale(language if language != i18n.ENGLISH else "en_US"))
    if language != i18n.ENGLISH:
        translator = QTranslator(app)
        translator.setObjectName("cmfnetQtTranslator")
        if translator.load(f"qtbase_{language}", qt_translations_dir()):
            app.installTranslator(translator)
    return language
