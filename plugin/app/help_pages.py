"""The Help menu's pages: About (with the version), Usage (the README's) and the Model Card.

The texts are the project's own documents, read when asked for, so the app never
says something the README or the model card does not.
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

from PyQt6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from cmfnet_core.versions import version_of

PROJECT = Path(__file__).resolve().parents[2]
README = PROJECT / "README.md"
USAGE_HEADING = "## Using it"


def app_version() -> str:
    return version_of("cmfnet-restore", missing="(not installed)")


def about_html(name: str) -> str:
    return (f"<b>{name}</b> {app_version()}<br>CMFNet (Fan et al.) in PaddlePaddle: deblur, "
            "dehaze and deraindrop photos. Your originals are never changed unless you say so.")


def readme_text() -> str:
    """The README from the checkout, or as installed (the package's long description)."""
    if README.is_file():
        return README.read_text(encoding="utf-8")
    try:
        described = metadata.metadata("cmfnet-restore")
    except metadata.PackageNotFoundError:
        return ""
    return described.get_payload() or described.get("Description") or ""


def usage_markdown() -> str:
    """The README's "Using it" section, up to the next section."""
    text = readme_text()
    start = text.find(USAGE_HEADING)
    if start < 0:
        return "The usage notes (README.md) are not installed here; `cmfnet restore --help` has them."
    end = text.find("\n## ", start + len(USAGE_HEADING))
    return text[start:end if end >= 0 else len(text)].strip()


def model_card_path() -> Path:
    from cmfnet_core.bundled import MODEL_CARD

    return MODEL_CARD


def model_card_markdown() -> str:
    path = model_card_path()
    if not path.is_file():
        return f"The model card is not installed here ({path})."
    return path.read_text(encoding="utf-8")


class DocumentDialog(QDialog):
    """A Markdown document to read (non-modal); its relative images come from ``folder``."""

    def __init__(self, title: str, markdown: str, folder: Path | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        if folder is not None:
            self.browser.setSearchPaths([str(folder)])
        self.browser.setMarkdown(markdown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(760, 640)
