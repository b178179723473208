"""Framework-neutral pieces of a rendered prompt.

A template renders to a tuple of segments that every backend tokenizes the same way:
maximal runs of literal text, the label slot, soft-token slots and the demonstrations
block. Keeping this structure (rather than one flat string) lets a causal LM score label
words after the prefix, a masked LM place masks, a soft prompt sit where the template put
it, and a chat API send demonstrations as messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Mask:
    """Where the label word (classification) or the output (generation) goes."""


@dataclass(frozen=True)
class Soft:
    """Trainable virtual tokens.

    `slot` is the ordinal of this soft slot in the template, so backends keep one
    parameter block per slot. `count` is None when it follows from tokenizing `init_text`.
    """

    slot: int
    count: int | None = None
    init_text: str | None = None


@dataclass(frozen=True)
class Demo:
    """One demonstration: its rendered input (no soft tokens, no nested demos) and answer."""

    prompt: Rendered
    answer: str


@dataclass(frozen=True)
class Demos:
    items: tuple[Demo, ...]
    separator: str = "\n\n"

    def as_text(self) -> str:
        """Demonstrations joined as plain text, each answer written at its mask."""
        parts = [d.prompt.fill_mask(d.answer) for d in self.items]
        return self.separator.join(parts) + (self.separator if parts else "")


Segment = Text | Mask | Soft | Demos


def _merge_text(segments: list[Segment]) -> tuple[Segment, ...]:
    """Join adjacent text so a backend tokenizes each run once (BPE merges across joins)."""
    out: list[Segment] = []
    for seg in segments:
        if isinstance(seg, Text):
            if not seg.text:
                continue
            if out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].text + seg.text)
                continue
        out.append(seg)
    return tuple(out)


@dataclass(frozen=True)
class Rendered:
    """A prompt after rendering: segments plus the id of the example it came from."""

    segments: tuple[Segment, ...]
    example_id: str | None = None
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def of(cls, segments: list[Segment], example_id: str | None = None) -> Rendered:
        return cls(_merge_text(list(segments)), example_id)

    # -- structure ---------------------------------------------------------------
    @property
    def has_mask(self) -> bool:
        return any(isinstance(s, Mask) for s in self.segments)

    @property
    def soft_slots(self) -> tuple[Soft, ...]:
        return tuple(s for s in self.segments if isinstance(s, Soft))

    @property
    def demos(self) -> Demos | None:
        return next((s for s in self.segments if isinstance(s, Demos)), None)

    def _mask_index(self) -> int:
        for i, seg in enumerate(self.segments):
            if isinstance(seg, Mask):
                return i
        return len(self.segments)

    def before_mask(self) -> tuple[Segment, ...]:
        """Segments before the mask, with the whitespace that leads into it removed.

        That whitespace belongs to the label word (" positive" is one BPE token,
        "positive" after a trailing space is not); see `mask_lead`.
        """
        head = list(self.segments[: self._mask_index()])
        if head and isinstance(head[-1], Text):
            stripped = head[-1].text.rstrip(" \t")
            head[-1] = Text(stripped)
        return _merge_text(head)

    def mask_lead(self) -> str:
        """The spaces/tabs just before the mask, which prefix the label word or output."""
        head = self.segments[: self._mask_index()]
        if head and isinstance(head[-1], Text):
            text = head[-1].text
            return text[len(text.rstrip(" \t")):]
        return ""

    def after_mask(self) -> tuple[Segment, ...]:
        return self.segments[self._mask_index() + 1:]

    # -- flattening --------------------------------------------------------------
    def expand_demos(self) -> Rendered:
        """Demonstrations folded into plain text, for models that take one string."""
        segs: list[Segment] = []
        for seg in self.segments:
            segs.append(Text(seg.as_text()) if isinstance(seg, Demos) else seg)
        return Rendered(_merge_text(segs), self.example_id)

    def without_soft(self) -> Rendered:
        return Rendered(_merge_text([s for s in self.segments if not isinstance(s, Soft)]),
                        self.example_id)

    def fill_mask(self, answer: str) -> str:
        """The prompt as text with `answer` at the mask; soft tokens dropped."""
        out: list[str] = []
        for seg in self.segments:
            if isinstance(seg, Text):
                out.append(seg.text)
            elif isinstance(seg, Mask):
                out.append(answer)
            elif isinstance(seg, Demos):
                out.append(seg.as_text())
        return "".join(out)

    def prefix_text(self) -> str:
        """Text before the mask (demos expanded, soft dropped, lead whitespace removed)."""
        return Rendered(self.before_mask()).fill_mask("")

    def text(self) -> str:
        """The whole prompt as one string with an empty mask (for display and hashing)."""
        return self.fill_mask("")
