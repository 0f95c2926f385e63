"""Which language CMFNet Restore speaks, and the catalogue it speaks from (no Qt here).

The language is the Preferences' choice when the app has one, else the system's:
``LANGUAGE``, ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` (the first one set, as gettext reads
them) on Linux, the OS setting elsewhere; English when none of them is a language
there is a catalogue for. Each language is one GNU gettext catalogue,
``cmfnet_core/locale/<lang>/LC_MESSAGES/cmfnet.po``, compiled to ``cmfnet.mo`` beside it
by ``tools/i18n.py`` (Babel); adding a language is adding one ``.po``.

Code marks what a user reads with ``_("… {name} …")`` (translated when called, the
placeholders filled in afterwards with ``.format``) or ``N_("…")`` for text defined
before the language is known (translated later with ``_(value)``).
"""
from __future__ import annotations

import gettext
import locale
import os
import re
import sys
import unicodedata
from pathlib import Path

DOMAIN = "cmfnet"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
ENGLISH = "en"
SYSTEM = "system"  # the Preferences' value for "follow the system"
# each language's own name, as the Preferences list it
NATIVE_NAMES = {ENGLISH: "English", "zh_CN": "简体中文"}
# Chinese written in traditional characters has no catalogue yet: it falls to the next
# language asked for, not to zh_CN
_SIMPLIFIED_CHINESE = {"zh", "zh_CN", "zh_SG", "zh_Hans", "zh_Hans_CN", "zh_Hans_SG"}

_translation: gettext.NullTranslations | None = None
_language = ENGLISH


def available_languages() -> tuple[str, ...]:
    """English (the messages in the code) and every language with a compiled catalogue."""
    found = sorted(p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))
    return (ENGLISH, *found)


def system_languages(environ=None, platform: str | None = None) -> list[str]:
    """The languages the user asked the system for, most wanted first (``zh_CN``, ``en_US``)."""
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        if environ.get(name):
            return [tag.split(".")[0].split("@")[0] for tag in environ[name].split(":") if tag]
    if platform == "win32":  # GUI programs on Windows get no LANG: ask for the UI language
        try:
            import ctypes

            return [locale.windows_locale[ctypes.windll.kernel32.GetUserDefaultUILanguage()]]
        except (AttributeError, KeyError, OSError):
            return []
    code = locale.getlocale(locale.LC_CTYPE)[0] if platform == "darwin" else None
    return [code] if code else []


def match_language(wanted: list[str], available=None) -> str:
    """The first of ``wanted`` there is a catalogue for; English when none (or C/POSIX comes first)."""
    available = available_languages() if available is None else available
    for tag in wanted:
        tag = tag.replace("-", "_")
        if tag in ("C", "POSIX"):
            return ENGLISH
        base = tag.split("_")[0]
        if base == "en":
            return ENGLISH
        if tag in available:
            return tag
        if tag in _SIMPLIFIED_CHINESE and "zh_CN" in available:
            return "zh_CN"
        if base != "zh" and base in available:
            return base
        regional = [code for code in available if code.split("_")[0] == base and base != "zh"]
        if regional:
            return regional[0]
    return ENGLISH


def choose_language(preference: str | None = None, environ=None) -> str:
    """The Preferences' language when it names one there is a catalogue for, else the system's."""
    if preference and preference != SYSTEM and preference in available_languages():
        return preference
    return match_language(system_languages(environ))


def translation(language: str) -> gettext.NullTranslations:
    if language == ENGLISH:
        return gettext.NullTranslations()
    return gettext.translation(DOMAIN, str(LOCALE_DIR), languages=[language], fallback=True)


def set_language(preference: str | None = None, environ=None) -> str:
    """Speak ``preference`` (a language code, or None / SYSTEM to follow the system) from now on."""
    global _translation, _language
    _language = choose_language(preference, environ)
    _translation = translation(_language)
    return _language


def current_language() -> str:
    if _translation is None:
        set_language()
    return _language


def _(message: str) -> str:
    """``message`` in the current language (English when it has no translation)."""
    if not message:  # gettext gives the catalogue's header for ""
        return message
    if _translation is None:
        set_language()
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    if _translation is None:
        set_language()
    return _translation.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks ``message`` for the catalogue; it is translated where it is shown, with ``_()``."""
    return message


def translate_argparse() -> None:
    """Let argparse's own words ("usage:", "options", its error lines) come from our catalogue.

    argparse binds ``gettext.gettext`` (the process-wide default domain) at import, which
    follows only the environment and has no Chinese on most systems; pointing its two
    names at ours gives its help and errors the same language as the rest of the tool."""
    import argparse

    argparse._ = _
    argparse.ngettext = ngettext


class Translated(dict):
    """A table of ``N_``-marked names whose values come out in the current language.

    ``TITLES = Translated({"deblur": N_("Deblur")})``: ``TITLES["deblur"]`` is "去模糊" in
    Chinese, looked up when read, so a table built at import follows a later language change."""

    def __getitem__(self, key):
        return _(super().__getitem__(key))

    def get(self, key, default=None):
        return self[key] if key in self else default

    def values(self):
        return [self[key] for key in self]

    def items(self):
        return [(key, self[key]) for key in self]


# --- help text in languages written without spaces ---------------------------------

_TOKENS = re.compile(r"\s+|[\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]|[^\s\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]+")
_NO_LINE_START = set("，。、；：！？）」』》”…")  # punctuation that closes, never opens a line
_NO_LINE_END = set("（「『《“")  # and that opens, never ends one
_WIDE_HEADING = re.compile(r"^(\S[^\n:：]*[\u2e80-\u9fff]):$", re.M)  # "选项:" (argparse's sections)


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap_wide(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` terminal columns (a Chinese character takes
    two); lines break between Chinese characters or at spaces, never before closing
    punctuation nor after opening. textwrap counts characters and breaks only at spaces."""
    lines, line = [], ""
    for token in _TOKENS.findall(" ".join(text.split())):
        if token.isspace():
            line += " " if line else ""
        elif _columns(line + token) <= width or not line.strip() or token in _NO_LINE_START:
            line += token
        else:
            carried = line[-1] if line[-1] in _NO_LINE_END else ""
            lines.append(line[:len(line) - len(carried)].rstrip())
            line = carried + token
    return lines + [line.rstrip()] if line.strip() else lines


def wide_text_formatter(base):
    """argparse formatter ``base`` that wraps help by display width where it holds wide
    characters (Chinese help would otherwise run past the terminal's edge)."""
    import argparse

    class WideTextFormatter(base):
        def _split_lines(self, text, width):
            if _columns(text) == len(text):
                return super()._split_lines(text, width)
            return wrap_wide(text, width)

        def _fill_text(self, text, width, indent):
            if _columns(text) == len(text) or base._fill_text is not argparse.HelpFormatter._fill_text:
                return super()._fill_text(text, width, indent)  # a Raw formatter keeps its lines
            return "\n".join(indent + line for line in wrap_wide(text, width - len(indent)))

        def format_help(self):
            # argparse writes "HEADING:" itself (no gettext); a heading in wide characters
            # takes the full-width colon of its language ("选项：")
            return _WIDE_HEADING.sub("\\1：", super().format_help())

    return WideTextFormatter
