"""Automatic prompt search on any backend, from backend primitives only.

Strategies: `propose` (LLM-proposed instructions, APE/OPRO), `gradient` (AutoPrompt trigger
tokens), `rl` (RLPrompt-style policy gradient), `verbalizer` (label words from the model's
own distribution), `demos` (which demonstrations to show). Names are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unified_prompt.lazy_exports import lazy_getattr

_EXPORTS = {
    "run_search": "unified_prompt.search.run",
    "SearchResult": "unified_prompt.search.report",
    "SearchBudget": "unified_prompt.search.budget",
    "Candidate": "unified_prompt.search.candidate",
    "STRATEGIES": "unified_prompt.search.strategies",
    "strategy_class": "unified_prompt.search.strategies",
}

__all__ = ["STRATEGIES", "Candidate", "SearchBudget", "SearchResult", "run_search",
           "strategy_class"]

if TYPE_CHECKING:
    from unified_prompt.search.budget import SearchBudget
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.report import SearchResult
    from unified_prompt.search.run import run_search
    from unified_prompt.search.strategies import STRATEGIES, strategy_class


__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
