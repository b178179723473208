"""Search strategies by name, imported only when named."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from unified_prompt.errors import UserInputError

if TYPE_CHECKING:
    from unified_prompt.search.strategies.base import Strategy

STRATEGIES: dict[str, str] = {
    "propose": "unified_prompt.search.strategies.propose:ProposeSearch",
    "gradient": "unified_prompt.search.strategies.gradient:GradientSearch",
    "rl": "unified_prompt.search.strategies.rl:RLSearch",
    "verbalizer": "unified_prompt.search.strategies.verbalizer:VerbalizerSearch",
    "demos": "unified_prompt.search.strategies.demos:DemoSearch",
}


def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise UserInputError(f"unknown search strategy {name!r} "
                             f"(strategies: {', '.join(STRATEGIES)})")
    module, attr = STRATEGIES[name].split(":")
    return getattr(import_module(module), attr)
