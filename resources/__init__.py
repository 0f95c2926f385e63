"""The files that ship with CMFNet Restore: bundled weights, sample photos, icons.

Installed as the package ``cmfnet_resources`` (see ``pyproject.toml``); found by
``cmfnet_core.bundled``. Holds no code.
"""
