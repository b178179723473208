"""Framework errors become the core's at every backend's edge, for every backend.

`Backend` and `TrainSession` subclasses get this without asking: their `__init_subclass__`
wraps each contract method the subclass defines (the tables below) in `boundary`, so a
new backend cannot forget it. Callers (the runner, search, the server, the CLI) then
handle one family of errors, `unified_prompt.errors`, whatever framework sits underneath:

- a core error raised inside passes through unchanged;
- while loading a model, a file or format error (OSError, ValueError, KeyError) is
  ModelNotFoundError, a user error;
- running out of memory is BackendError with a hint;
- anything else is BackendError naming the backend and what it was doing.

The original exception stays chained (`__cause__`) for debugging.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from unified_prompt.errors import BackendError, ModelNotFoundError, UnifiedPromptError

F = TypeVar("F", bound=Callable[..., Any])

#: Backend methods wrapped, with the words their errors use.
BACKEND_ACTIONS: dict[str, str] = {
    "load_model": "loading a model", "model_info": "reading model info",
    "score": "scoring", "generate": "generation", "top_tokens": "top tokens",
    "text_logprobs": "scoring raw text", "generate_text": "raw-text generation",
    "render_chat": "rendering chat messages", "vocabulary": "reading the vocabulary",
    "tokenize": "tokenizing", "token_gradients": "token gradients",
    "start_training": "starting training", "load_adapter": "loading an adapter",
    "create_hosted_job": "creating a hosted job", "hosted_job": "reading a hosted job",
    "find_hosted_job": "finding a hosted job", "estimate": "estimating cost",
}
#: TrainSession methods wrapped.
SESSION_ACTIONS: dict[str, str] = {
    "forward_backward": "a training step", "optimizer_step": "an optimizer step",
    "loss": "computing a loss", "trainable_state": "reading the trainable state",
    "load_trainable_state": "loading a trainable state", "save_checkpoint": "saving a checkpoint",
    "load_checkpoint": "loading a checkpoint", "save_adapter": "saving an adapter",
}
#: Exception class names frameworks use for memory exhaustion (torch, paddle).
_OUT_OF_MEMORY = ("OutOfMemoryError", "ResourceExhaustedError")


def describe(exc: BaseException) -> str:
    """`Type: first line of the message` (framework messages run to C++ stack traces)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def translate(exc: Exception, backend: str, action: str, *,
              loading: str | None = None) -> UnifiedPromptError:
    """The core error a framework exception becomes (see the module docstring)."""
    if isinstance(exc, UnifiedPromptError):
        return exc
    if isinstance(exc, MemoryError) or type(exc).__name__ in _OUT_OF_MEMORY:
        return BackendError(f"{backend} backend: out of memory during {action}; use a smaller "
                            "batch_size or max_length")
    if loading is not None and isinstance(exc, (OSError, ValueError, KeyError)):
        return ModelNotFoundError(f"{backend} backend: cannot load model {loading!r} "
                                  f"({describe(exc)})")
    return BackendError(f"{backend} backend: {action} failed ({describe(exc)})")


@contextmanager
def boundary(backend: str, action: str, *, loading: str | None = None) -> Iterator[None]:
    """Re-raise whatever is not already a core error as one (chained)."""
    try:
        yield
    except UnifiedPromptError:
        raise
    except Exception as exc:
        raise translate(exc, backend, action, loading=loading) from exc


def translated(fn: F, action: str, owner: Callable[[Any], str], *,
               loading: bool = False) -> F:
    """`fn` (a method) inside `boundary`; `owner(self)` names the backend, and with
    `loading` the first argument is the model reference being loaded."""
    if getattr(fn, "__boundary__", False):
        return fn

    @functools.wraps(fn)
    def inner(self: Any, *args: Any, **kwargs: Any) -> Any:
        ref = str(args[0] if args else kwargs.get("ref")) if loading else None
        with boundary(owner(self), action, loading=ref):
            return fn(self, *args, **kwargs)

    inner.__boundary__ = True  # type: ignore[attr-defined]
    return inner  # type: ignore[return-value]


def guard_class(cls: type, actions: dict[str, str], owner: Callable[[Any], str]) -> None:
    """Wrap each method of `actions` that `cls` itself defines (inherited ones already are)."""
    for name, action in actions.items():
        fn = cls.__dict__.get(name)
        if callable(fn):
            setattr(cls, name, translated(fn, action, owner, loading=name == "load_model"))
