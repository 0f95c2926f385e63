"""File-manager integration (freedesktop, Nautilus, Nemo, Dolphin, Windows, macOS)."""
