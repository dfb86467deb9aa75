"""The exception types that reach the user as a one-line message.

Every one is a ``LipganError``. The library's argument errors are also the built-in type
Python callers expect: ``ArgumentError`` is a ``ValueError``, ``ArgumentTypeError`` a
``TypeError`` and ``UsageError`` a ``RuntimeError`` (docs/api.md, "Errors").
"""

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


class ArgumentError(ConfigError, ValueError):
    """A library argument is out of range, unknown (a typo'd name) or of the wrong shape."""


class ArgumentTypeError(ConfigError, TypeError):
    """A library argument has the wrong type (a list where a tensor belongs, a str weight)."""


class UsageError(LipganError, RuntimeError):
    """A library call made where it cannot work: a penalty with grad mode off, the hooks
    of a strategy that was not attached to the critic they are given."""


class DataError(LipganError):
    """A data set is missing, empty, corrupt or of the wrong shape."""


class CheckpointError(LipganError):
    """A checkpoint is missing, unsafe, or does not fit the model."""


class DivergenceError(LipganError):
    """Training produced a non-finite loss or gradient."""

    exit_code = 3
