"""Bangdai's gateway, channels, app wiring and CLI."""
