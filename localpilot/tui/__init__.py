"""The terminal UI (Textual). Only this package imports textual."""

from __future__ import annotations

from pathlib import Path

from localpilot.config import Settings


def run(repo: Path, settings_overrides: dict[str, object] | None = None) -> int:
    """Open the TUI on the repository containing ``repo``; errors become in-app notices."""
    from localpilot.config import load_settings
    from localpilot.errors import LocalpilotError
    from localpilot.index.walker import find_repo_root
    from localpilot.service import Assistant
    from localpilot.tui.app import LocalpilotApp

    try:
        root = find_repo_root(repo)
        settings: Settings = load_settings(root, **(settings_overrides or {}))
        app = LocalpilotApp(Assistant(root, settings))
    except LocalpilotError as exc:
        app = LocalpilotApp(None, error=f"{exc}")
    app.run()
    if app.assistant is not None:
        app.assistant.close()
    return 0
