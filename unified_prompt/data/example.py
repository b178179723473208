"""The record every loader produces and every backend consumes."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Example:
    """One example: text fields the template fills, and a label or a target.

    `fields` holds every text the template may name ({text}, {question}, ...);
    classification examples carry `label`, generation examples carry `target`; qa
    examples carry every acceptable `answers` and the first as `target` (what training
    teaches and demonstrations show); ner examples carry `tokens` with their IOB2 `tags`,
    and as `target` their entities in the output format (unified_prompt.ner_format).
    """

    id: str
    fields: dict[str, str]
    label: str | None = None
    target: str | None = None
    answers: tuple[str, ...] = ()
    tokens: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def text(self) -> str:
        """The main text (the `text` field, else the first field)."""
        if "text" in self.fields:
            return self.fields["text"]
        return next(iter(self.fields.values()), "")

    def to_dict(self) -> dict:
        out: dict = {"id": self.id, **self.fields}
        if self.label is not None:
            out["label"] = self.label
        if self.target is not None:
            out["target"] = self.target
        if self.answers:
            out["answers"] = list(self.answers)
        if self.tokens:
            out["tokens"], out["tags"] = list(self.tokens), list(self.tags)
        return out
