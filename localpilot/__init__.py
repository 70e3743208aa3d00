"""localpilot: a local developer assistant made of small on-device experts."""

__version__ = "0.1.0"
