"""The one template syntax every backend shares.

    Review: {text}\nSentiment: {mask}          hard prompt
    {soft:20} {text} It was {mask}.            soft prompt of 20 virtual tokens, then text
    {soft:"Classify the sentiment"} {text}     soft tokens initialised from text
    {demos}Review: {text}\nSentiment: {mask}   few-shot demonstrations go first

Slots: `{field}` (any field of the example), `{mask}`, `{soft}` / `{soft:N}` /
`{soft:"init"}` / `{soft:N:"init"}`, `{demos}`. `{{` and `}}` are literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from unified_prompt.errors import TemplateError
from unified_prompt.prompts.segments import Demo, Demos, Mask, Rendered, Segment, Soft, Text

RESERVED = frozenset({"mask", "soft", "demos"})
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SOFT = re.compile(r'soft(?::(?P<count>\d+))?(?::"(?P<init>(?:[^"\\]|\\.)*)")?')


@dataclass(frozen=True)
class FieldSlot:
    name: str


@dataclass(frozen=True)
class MaskSlot:
    pass


@dataclass(frozen=True)
class DemosSlot:
    pass


Part = str | FieldSlot | MaskSlot | Soft | DemosSlot


def _parse_slot(body: str, template: str, col: int, soft_ordinal: int) -> Part:
    if body == "mask":
        return MaskSlot()
    if body == "demos":
        return DemosSlot()
    if body.startswith("soft"):
        m = _SOFT.fullmatch(body)
        if not m:
            raise TemplateError(
                f"bad soft slot {{{body}}} at column {col} of template {template!r}; "
                'use {soft}, {soft:N}, {soft:"init text"} or {soft:N:"init text"}')
        count = int(m["count"]) if m["count"] else None
        init = m["init"].replace('\\"', '"') if m["init"] is not None else None
        if count == 0:
            raise TemplateError(f"{{{body}}} at column {col}: a soft slot needs at least 1 token")
        if count is None and init is None:
            count = 1
        return Soft(soft_ordinal, count, init)
    if _FIELD.fullmatch(body):
        return FieldSlot(body)
    raise TemplateError(
        f"cannot read slot {{{body}}} at column {col} of template {template!r}: "
        "a slot is {field_name}, {mask}, {soft...} or {demos}; write {{ and }} for braces")


def _parse(template: str) -> tuple[Part, ...]:
    parts: list[Part] = []
    buf: list[str] = []
    i, n, soft_ordinal = 0, len(template), 0
    while i < n:
        ch = template[i]
        if ch == "{" and template.startswith("{{", i):
            buf.append("{")
            i += 2
        elif ch == "}" and template.startswith("}}", i):
            buf.append("}")
            i += 2
        elif ch == "{":
            end = _slot_end(template, i)
            if buf:
                parts.append("".join(buf))
                buf = []
            part = _parse_slot(template[i + 1:end], template, i + 1, soft_ordinal)
            if isinstance(part, Soft):
                soft_ordinal += 1
            parts.append(part)
            i = end + 1
        elif ch == "}":
            raise TemplateError(f"unmatched '}}' at column {i + 1} of template {template!r}")
        else:
            buf.append(ch)
            i += 1
    if buf:
        parts.append("".join(buf))
    return tuple(parts)


def _slot_end(template: str, start: int) -> int:
    """Index of the `}` closing the slot at `start`, skipping quoted init text."""
    i, quoted = start + 1, False
    while i < len(template):
        ch = template[i]
        if quoted and ch == "\\":
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "}" and not quoted:
            return i
        elif ch == "{" and not quoted:
            break
        i += 1
    raise TemplateError(f"unclosed '{{' at column {start + 1} of template {template!r}")


class Template:
    """A parsed template; renders examples into `Rendered` segments."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.parts = _parse(source)
        masks = sum(isinstance(p, MaskSlot) for p in self.parts)
        if masks > 1:
            raise TemplateError(f"template {source!r} has {masks} {{mask}} slots; at most one")
        if sum(isinstance(p, DemosSlot) for p in self.parts) > 1:
            raise TemplateError(f"template {source!r} has more than one {{demos}} slot")

    def __repr__(self) -> str:
        return f"Template({self.source!r})"

    @property
    def fields(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for p in self.parts:
            if isinstance(p, FieldSlot):
                seen.setdefault(p.name)
        return tuple(seen)

    @property
    def has_mask(self) -> bool:
        return any(isinstance(p, MaskSlot) for p in self.parts)

    @property
    def has_demos_slot(self) -> bool:
        return any(isinstance(p, DemosSlot) for p in self.parts)

    @property
    def soft_slots(self) -> tuple[Soft, ...]:
        return tuple(p for p in self.parts if isinstance(p, Soft))

    def with_soft_prefix(self, count: int, init_text: str | None = None) -> Template:
        """This template with `count` soft tokens in front (prompt tuning's usual layout)."""
        init = "" if init_text is None else ':"' + init_text.replace('"', '\\"') + '"'
        return Template(f"{{soft:{count}{init}}}" + self.source)

    def render(self, fields: Mapping[str, str], *, demos: tuple[Demo, ...] = (),
               separator: str = "\n\n", example_id: str | None = None,
               truncate: Mapping[str, int] | None = None) -> Rendered:
        """Fill the slots. Demonstrations go to `{demos}`, else in front of the first text."""
        segs: list[Segment] = []
        for p in self.parts:
            if isinstance(p, str):
                segs.append(Text(p))
            elif isinstance(p, FieldSlot):
                if p.name not in fields:
                    have = ", ".join(sorted(fields)) or "none"
                    raise TemplateError(
                        f"template {self.source!r} uses {{{p.name}}} but the example has no "
                        f"field {p.name!r} (fields: {have}); map it with data.fields")
                value = fields[p.name]
                limit = (truncate or {}).get(p.name)
                segs.append(Text(truncate_text(value, limit) if limit else value))
            elif isinstance(p, MaskSlot):
                segs.append(Mask())
            elif isinstance(p, Soft):
                segs.append(p)
            elif isinstance(p, DemosSlot) and demos:
                segs.append(Demos(demos, separator))
        if demos and not self.has_demos_slot:
            lead = 0
            while lead < len(segs) and isinstance(segs[lead], Soft):
                lead += 1
            segs.insert(lead, Demos(demos, separator))
        return Rendered.of(segs, example_id)

    def render_demo(self, fields: Mapping[str, str], answer: str,
                    truncate: Mapping[str, int] | None = None) -> Demo:
        """A demonstration: this template without soft tokens or nested demos."""
        plain = Template.__new__(Template)
        plain.source = self.source
        plain.parts = tuple(p for p in self.parts if not isinstance(p, (Soft, DemosSlot)))
        return Demo(plain.render(fields, truncate=truncate), answer)


def truncate_text(value: str, limit: int) -> str:
    """Cut to at most `limit` characters, at a word boundary when one is near."""
    if len(value) <= limit:
        return value
    cut = value[:limit]
    if value[limit].isspace():
        return cut
    space = cut.rfind(" ")
    return cut[:space] if space > 0 and limit - space <= 30 else cut


def parse_template(source: str) -> Template:
    return Template(source)
