"""Renderers: pure functions of a Report (text, JSON, SSM Run Command output)."""
