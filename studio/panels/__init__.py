"""Dockable panels around the canvas: palette, inspector, summary (training panels later)."""
