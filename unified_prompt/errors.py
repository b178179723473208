"""The error types every part of unified-prompt raises.

Backends translate their library's exceptions into these at the boundary, so callers
(and the CLI) handle one family of errors whatever framework sits underneath.
`exit_code` is what the CLI exits with: 2 for bad input the user can fix, 1 otherwise.
"""

from __future__ import annotations


class UnifiedPromptError(Exception):
    """Base class: anything the library raises on purpose."""

    exit_code = 1


class UserInputError(UnifiedPromptError):
    """Bad input the user can fix: a spec, a data file, an argument."""

    exit_code = 2


class ConfigError(UserInputError):
    """An experiment spec (or an override) is invalid.

    `problems` holds (key path, message) pairs so tools can point at each key.
    """

    def __init__(self, message: str, *, source: str | None = None,
                 problems: list[tuple[str, str]] | None = None) -> None:
        self.source = source
        self.problems = problems or []
        super().__init__(message)


class DataError(UserInputError):
    """A data file is malformed; names the file and, where known, the line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class TemplateError(UserInputError):
    """A prompt template does not parse or names a field the data lacks."""


class BackendNotInstalledError(UserInputError):
    """The spec names a backend whose distribution is not installed."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        hint = f"pip install 'unified-prompt[{name}]'"
        have = ", ".join(known) if known else "none"
        super().__init__(f"backend {name!r} is not installed ({hint}); installed: {have}")


class ModelNotFoundError(UserInputError):
    """A model reference is neither a known alias nor a usable local folder or hosted id."""


class CapabilityError(UnifiedPromptError):
    """The backend lacks a primitive the experiment needs; says which and why."""

    exit_code = 2


class BackendError(UnifiedPromptError):
    """A framework or remote API failed; the original exception is chained."""


class AuthenticationError(BackendError):
    """The hosted API rejected the credentials."""

    exit_code = 2


class QuotaExceededError(BackendError):
    """The hosted account is out of quota: retrying cannot help."""


class RateLimitError(BackendError):
    """Rate limited after every retry the policy allowed."""


class BudgetExceededError(UnifiedPromptError):
    """A run or search would spend more than its configured budget."""

    exit_code = 2


class JobFailedError(BackendError):
    """A training job (local or hosted) ended in `failed` or `cancelled`."""


class RunDirectoryError(UserInputError):
    """The output directory holds another run, or a resume does not match it."""
