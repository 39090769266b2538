"""User-facing errors.

Every failure a user can cause is raised as :class:`SpnRestoreError` (or a
subclass) whose message names the file or configuration key, says what is
wrong, and says what to do about it.
"""

from __future__ import annotations


class SpnRestoreError(Exception):
    """An error caused by the user's data or configuration, with a remedy."""


class ConfigError(SpnRestoreError):
    """A configuration key or value is missing or invalid."""


class BadImageError(SpnRestoreError):
    """An input image cannot be used (unreadable, truncated, constant, too small...)."""

    def __init__(self, path, problem: str, fix: str = ""):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        message = f"{self.path}: {problem}"
        if fix:
            message += f" ({fix})"
        super().__init__(message)
