"""Live paddle parameters under canonical names, through the layouts table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unified_prompt.errors import UserInputError
from unified_prompt_paddle.layouts import Entry
from unified_prompt_paddle.runtime import paddle


@dataclass
class Binding:
    """A paddle parameter and the layout entry relating it to its canonical array."""

    param: Any
    entry: Entry

    def to_canonical(self) -> np.ndarray:
        return self.entry.to_canonical(self.param.numpy())

    @property
    def canonical_shape(self) -> tuple[int, ...]:
        shape = tuple(int(s) for s in self.param.shape)
        return shape[::-1] if self.entry.transpose else shape

    def load(self, array: np.ndarray) -> None:
        value = self.entry.to_native(array)
        if tuple(value.shape) != tuple(int(s) for s in self.param.shape):
            raise UserInputError(f"{self.entry.canonical}: state shape {list(np.shape(array))} "
                                 f"does not fit canonical shape {list(self.canonical_shape)}")
        with paddle().no_grad():
            self.param.set_value(value)


Bindings = dict[str, Binding]


def bind(layer: Any, entries: list[Entry]) -> Bindings:
    """Bindings for `entries` against `layer`'s named parameters (native names)."""
    params = dict(layer.named_parameters())
    missing = [e.native for e in entries if e.native not in params]
    if missing:
        raise KeyError(f"parameters not found: {missing[:3]}")
    return {e.canonical: Binding(params[e.native], e) for e in entries}


def load_state(bindings: Bindings, state: dict[str, np.ndarray]) -> None:
    missing = sorted(set(bindings) - set(state))
    if missing:
        raise UserInputError(f"adapter state lacks {missing[:3]}")
    for name, b in bindings.items():
        b.load(state[name])
