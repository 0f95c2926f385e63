"""Render cmfnet-restore.svg to the PNG sizes the app and desktop entries use (needs PyQt6).

    python resources/icons/render_icon.py
"""
from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QGuiApplication, QImage, QPainter
from PyQt6.QtSvg import QSvgRenderer

HERE = Path(__file__).resolve().parent


def render(size: int, target: Path) -> None:
    renderer = QSvgRenderer(str(HERE / "cmfnet-restore.svg"))
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    if not image.save(str(target)):
        raise SystemExit(f"could not write {target}")


if __name__ == "__main__":
    app = QGuiApplication(["render_icon", "-platform", "offscreen"])
    render(256, HERE / "cmfnet-restore.png")
    render(48, HERE / "cmfnet-restore-48.png")
