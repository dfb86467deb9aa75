"""The one exception type that reaches the user as a one-line message."""

from __future__ import annotations


class LipganError(Exception):
    """A problem the user can fix: the message names the problem and the fix.

    The CLI prints ``error: <message>`` and exits with ``exit_code``; it never
    shows a traceback for this type.
    """

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(LipganError):
    """An option or config file value is out of range or unknown."""


class DataError(LipganError):
    """A data set is missing, empty, corrupt or of the wrong shape."""


class CheckpointError(LipganError):
    """A checkpoint is missing, unsafe, or does not fit the model."""


class DivergenceError(LipganError):
    """Training produced a non-finite loss or gradient."""

    exit_code = 3
