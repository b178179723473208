"""Chat messages written with the model's own chat template, as transformers renders it.

The template comes from the folder's chat_template.jinja (which transformers prefers) or
tokenizer_config.json's chat_template (a string, or named templates: "default"); it is
rendered with jinja2 in a sandbox set up as `transformers.apply_chat_template` sets it up
(trim_blocks, lstrip_blocks, loop controls, its tojson / raise_exception / strftime_now,
the special tokens as variables) with add_generation_prompt=True. A folder without a
template gets plain "role: content" lines and "assistant:".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from unified_prompt.decoding import plain_chat
from unified_prompt.errors import UserInputError
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.tokenizer import read_json_if_any, special_config, special_text

SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                 "mask_token", "additional_special_tokens")


@lru_cache(maxsize=8)
def find_template(folder: Path) -> tuple[str | None, dict[str, Any]]:
    """The folder's default chat template (None without one) and the special tokens, read
    once per model folder (a server renders every chat request with them)."""
    config = read_json_if_any(folder / "tokenizer_config.json")
    special = special_config(folder)
    tokens = {k: special_text(special[k]) for k in SPECIAL_NAMES if special.get(k) is not None}
    file = folder / "chat_template.jinja"
    if file.is_file():
        return file.read_text(encoding="utf-8"), tokens
    template = config.get("chat_template")
    if isinstance(template, list):  # [{"name": ..., "template": ...}, ...]
        template = {t["name"]: t["template"] for t in template}
    if isinstance(template, dict):
        template = template.get("default")
    return (template if isinstance(template, str) and template else None), tokens


@lru_cache(maxsize=8)
def compile_template(source: str) -> Any:
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}` (assistant-mask markers): the body only."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body
                                          ).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return caller()

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def render_chat(model: PaddleModel, messages: Sequence[dict[str, str]]) -> str:
    template, tokens = find_template(model.folder)
    if template is None:
        return plain_chat(messages)
    import jinja2

    try:
        return compile_template(template).render(
            messages=[dict(m) for m in messages], tools=None, documents=None,
            add_generation_prompt=True, **tokens)
    except jinja2.TemplateError as exc:
        raise UserInputError(f"{model.name}: the chat template failed: {exc}") from exc
