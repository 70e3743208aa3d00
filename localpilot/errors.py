"""One short error hierarchy; front-ends turn these into exit codes or UI."""

from __future__ import annotations


class LocalpilotError(Exception):
    """Base class: the message says what went wrong and what to do about it."""

    exit_code = 1


class ConfigError(LocalpilotError):
    """A configuration file or value is invalid."""

    exit_code = 2


class NotAGitRepo(LocalpilotError):
    """The path is not inside a git work tree."""

    exit_code = 2


class GitError(LocalpilotError):
    """git could not be run, or a git command failed; the message carries git's own words."""


class ModelNotFound(LocalpilotError):
    """A model preset or file is not installed or not known."""

    exit_code = 3


class ModelCorrupt(LocalpilotError):
    """A model file exists but its checksum or size is wrong."""

    exit_code = 3


class IndexBusy(LocalpilotError):
    """Another process is writing this repo's index."""

    exit_code = 4


class IndexMissing(LocalpilotError):
    """The repo has not been indexed yet (for this embedding model)."""

    exit_code = 5


class StoreError(LocalpilotError):
    """The vector store failed or is unreadable."""

    exit_code = 6
