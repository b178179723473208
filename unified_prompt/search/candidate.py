"""A candidate prompt: template, label words, demonstrations (and the calibration its label
scores get), and the spec it makes.

A candidate is the part of a spec a search may change; `apply` writes it into a copy of
the base spec, so the best candidate is a spec `unified-prompt run` takes as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from unified_prompt.config import ExperimentSpec, build_spec

Words = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class DemoChoice:
    """Which demonstrations to show: a fixed list of training ids, or k per label chosen by
    the named selection."""

    selection: str
    k: int = 0
    ids: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"selection": self.selection, "k": self.k}
        if self.ids is not None:
            out["ids"] = list(self.ids)
        return out


@dataclass(frozen=True)
class Candidate:
    template: str
    words: Words
    demos: DemoChoice | None = None
    calibration: str | None = None
    origin: str = field(default="", compare=False)

    @classmethod
    def from_spec(cls, spec: ExperimentSpec, origin: str = "original") -> Candidate:
        verbalizer = spec.prompt.verbalizer or {}
        words = tuple((label, (w,) if isinstance(w, str) else tuple(w))
                      for label, w in verbalizer.items())
        return cls(spec.prompt.template, words, origin=origin)

    @property
    def verbalizer(self) -> dict[str, list[str]]:
        return {label: list(ws) for label, ws in self.words}

    def with_(self, *, template: str | None = None, words: Words | None = None,
              demos: DemoChoice | None = None, calibration: str | None = None,
              origin: str | None = None) -> Candidate:
        return Candidate(self.template if template is None else template,
                         self.words if words is None else words,
                         self.demos if demos is None else demos,
                         self.calibration if calibration is None else calibration,
                         self.origin if origin is None else origin)

    def prompt_key(self) -> str:
        """Identity of what is sent to the model: one dev pass serves every calibration."""
        return json.dumps([self.template, self.words, self.demos.to_dict() if self.demos else None])

    def key(self) -> str:
        """Identity for caching scores: the same candidate is never paid for twice."""
        return json.dumps([self.prompt_key(), self.calibration])

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"template": self.template, "verbalizer": self.verbalizer}
        if self.demos is not None:
            out["demonstrations"] = self.demos.to_dict()
        if self.calibration is not None:
            out["calibration"] = self.calibration
        return out

    def apply(self, base: ExperimentSpec) -> ExperimentSpec:
        """The base spec with this candidate's template, label words and demonstrations."""
        data = base.model_dump(mode="json", exclude_none=True)
        data["prompt"]["template"] = self.template
        if self.words:
            data["prompt"]["verbalizer"] = self.verbalizer
        if self.demos is not None:
            demos = {k: v for k, v in data["prompt"].get("demonstrations", {}).items()
                     if k == "separator"}
            data["prompt"]["demonstrations"] = {**demos, **self.demos.to_dict()}
        if self.calibration is not None:
            data["prompt"].setdefault("calibration", {})["method"] = self.calibration
        return build_spec(data)
