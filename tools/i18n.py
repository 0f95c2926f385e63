#!/usr/bin/env python3
"""Keep the translation catalogues in step with the code (GNU gettext, through Babel).

    python tools/i18n.py extract   # code -> cmfnet.pot, merged into every language's .po
    python tools/i18n.py compile   # every .po -> its .mo (what the tool reads at run time)
    python tools/i18n.py check     # untranslated, fuzzy or placeholder-broken entries
    python tools/i18n.py init LANG # start a new language (e.g. de, pt_BR) from cmfnet.pot

A translator edits ``cmfnet_core/locale/<lang>/LC_MESSAGES/cmfnet.po`` (a new language:
``init LANG`` first), then runs ``compile``.
The compiled ``.mo`` files are committed so that every install path has them;
tests/test_i18n.py fails when one is out of step with its ``.po``.
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "cmfnet_core" / "locale"
DOMAIN = "cmfnet"
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
# what is scanned: the core, the app, the right-click runner and the GIMP plug-in
SOURCES = ("cmfnet_core", "plugin")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2), "N_plural": (1, 2)}
PLACEHOLDER = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}|%\([A-Za-z_]+\)[sdr]|%[sdr]")


def source_files() -> list[Path]:
    return sorted(p for d in SOURCES for p in (ROOT / d).rglob("*.py")
                  if "training" not in p.parts)  # training is a developer's tool, in English


def extract() -> Catalog:
    template = Catalog(project="CMFNet Restore", version="0.1.0", domain=DOMAIN,
                       msgid_bugs_address="", charset="utf-8")
    for path in source_files():
        relative = path.relative_to(ROOT).as_posix()
        for lineno, message, comments, _context in extract_from_file(
                "python", str(path), keywords=KEYWORDS, comment_tags=("TRANSLATORS:",)):
            template.add(message, None, [(relative, lineno)], auto_comments=comments)
    return template


def po_files() -> list[Path]:
    return sorted(LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, domain=DOMAIN)


def write(catalog: Catalog, path: Path, **options) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, omit_header=False, **options)
    path.write_bytes(buffer.getvalue())


def mo_bytes(po_path: Path) -> bytes:
    """The compiled catalogue of ``po_path`` (fuzzy entries left out, as msgfmt does)."""
    buffer = io.BytesIO()
    write_mo(buffer, read(po_path), use_fuzzy=False)
    return buffer.getvalue()


def problems(catalog: Catalog) -> list[str]:
    """Entries a user would see in English or broken: untranslated, fuzzy, a placeholder lost."""
    found = []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if not all(strings):
            found.append(f"untranslated: {ids[0]!r}")
        elif message.fuzzy:
            found.append(f"fuzzy: {ids[0]!r}")
        else:
            wanted = sorted(PLACEHOLDER.findall(ids[0]))
            for string in strings:
                if sorted(PLACEHOLDER.findall(string)) != wanted:
                    found.append(f"placeholders differ: {ids[0]!r} -> {string!r}")
    return found


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "extract":
        template = extract()
        write(template, TEMPLATE, ignore_obsolete=True, include_lineno=False)
        for path in po_files():
            catalog = read(path)
            catalog.update(template, update_header_comment=False)
            write(catalog, path, ignore_obsolete=True, include_lineno=False)
        print(f"{len(template)} messages; updated {len(po_files())} catalogue(s)")
    elif command == "compile":
        for path in po_files():
            path.with_suffix(".mo").write_bytes(mo_bytes(path))
            print(f"compiled {path.relative_to(ROOT)}")
    elif command == "init" and len(argv) == 2:
        path = LOCALE_DIR / argv[1] / "LC_MESSAGES" / f"{DOMAIN}.po"
        path.parent.mkdir(parents=True, exist_ok=True)
        with TEMPLATE.open("rb") as f:
            template = read_po(f, domain=DOMAIN)
        catalog = Catalog(locale=argv[1], domain=DOMAIN, project="CMFNet Restore", version="0.1.0",
                          charset="utf-8")
        catalog.update(template)
        write(catalog, path, include_lineno=False)
        print(f"wrote {path.relative_to(ROOT)}: translate it, then run compile")
    elif command == "check":
        bad = [f"{path.relative_to(ROOT)}: {p}" for path in po_files() for p in problems(read(path))]
        print("\n".join(bad) or "all messages translated")
        return 1 if bad else 0
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
