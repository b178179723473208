"""Where discrete prompt tokens go in a template, and writing them there as text.

The gradient and rl strategies place tokens at `{soft:N}` slots: either slots the user
marks in a `slots` template option, or one slot inserted into the base template (after
its last field, where AutoPrompt puts its triggers, or in front). The final template writes
the tokens as literal text, so it is a plain hard prompt any backend runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from unified_prompt.errors import UserInputError
from unified_prompt.prompts.segments import Soft
from unified_prompt.prompts.template import DemosSlot, FieldSlot, MaskSlot, Template

Position = Literal["after_text", "prefix"]


def escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _slot_source(part: Soft) -> str:
    init = "" if part.init_text is None else ':"' + part.init_text.replace('"', '\\"') + '"'
    count = "" if part.count is None else f":{part.count}"
    return "{soft" + count + init + "}"


def write(template: Template, fill: Mapping[int, str] | None = None) -> str:
    """The template's source with soft slot s replaced by the literal text `fill[s]`."""
    out = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(escape(part))
        elif isinstance(part, FieldSlot):
            out.append("{" + part.name + "}")
        elif isinstance(part, MaskSlot):
            out.append("{mask}")
        elif isinstance(part, DemosSlot):
            out.append("{demos}")
        elif isinstance(part, Soft):
            out.append(escape(fill[part.slot]) if fill and part.slot in fill else _slot_source(part))
    return "".join(out)


def slot_template(base: str, count: int, position: Position, marked: str | None) -> Template:
    """The template with soft slots marking where the tokens go."""
    if marked is not None:
        t = Template(marked)
        if not t.soft_slots or any(s.count is None for s in t.soft_slots):
            raise UserInputError("the slots option needs a template with {soft:N} slots "
                                 f"(N tokens each); got {marked!r}")
        return t
    t = Template(base)
    if t.soft_slots:
        raise UserInputError("the spec's template already has {soft} slots; give the slots "
                             "option instead")
    parts = list(t.parts)
    at = 0
    if position == "after_text":
        fields = [i for i, p in enumerate(parts) if isinstance(p, FieldSlot)]
        at = fields[-1] + 1 if fields else 0
    slot = Soft(0, count)
    source = write_parts(parts[:at]) + _slot_source(slot) + write_parts(parts[at:])
    return Template(source)


def write_parts(parts: list) -> str:
    t = Template.__new__(Template)
    t.parts = tuple(parts)
    return write(t)


def spaced_fill(template: Template, tokens: Mapping[int, str]) -> dict[int, str]:
    """Each slot's text with a space added where it would run into the words beside it."""
    out: dict[int, str] = {}
    parts = template.parts
    for i, part in enumerate(parts):
        if not isinstance(part, Soft) or part.slot not in tokens:
            continue
        text = tokens[part.slot]
        before = parts[i - 1] if i > 0 else None
        after = parts[i + 1] if i + 1 < len(parts) else None
        if text and not text[0].isspace() and (
                isinstance(before, FieldSlot) or (isinstance(before, str) and before
                                                  and not before[-1].isspace())):
            text = " " + text
        if text and not text[-1].isspace() and (
                isinstance(after, (FieldSlot, MaskSlot)) or (isinstance(after, str) and after
                                                             and not after[0].isspace())):
            text = text + " "
        out[part.slot] = text
    return out


def slot_sizes(template: Template) -> dict[int, int]:
    return {s.slot: int(s.count or 1) for s in template.soft_slots}
