"""LLM-proposed instructions (APE, Zhou et al. 2022; OPRO, Yang et al. 2023).

A proposer model (any backend that generates: a hosted model or a local one; by default the
target itself) reads a few training examples and the earlier candidates with their dev
accuracy, worst to best, and writes a new instruction (or a whole template, when what it
writes has the template's slots). With `mode: template` it is shown earlier whole templates
and asked for a new one: a small proposer that cannot write a useful instruction still
rewrites a template it is shown. Each proposal is scored on the dev objective by the
target; the best ones are shown again in the next round, so proposals are refined.
With `mode: segments` it rewrites one piece of the template's own wording at a time (the
words before the input, the words before the label), continuing a list of earlier versions
with their accuracy: what a proposer too small to keep `{text}` and `{mask}` in place can
still do, and every proposal is a valid template.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from unified_prompt.backend import GenerationParams
from unified_prompt.errors import TemplateError, UserInputError
from unified_prompt.prompts.segments import Mask, Rendered, Text
from unified_prompt.prompts.template import FieldSlot, MaskSlot, Template
from unified_prompt.search.budget import Pricer
from unified_prompt.search.objective import AnyScore, objective_metrics, percent
from unified_prompt.search.slots import write_parts
from unified_prompt.search.strategies.base import PlanInput, Strategy, StrategyOptions, StrategyPlan

if TYPE_CHECKING:
    from unified_prompt.backend import Backend
    from unified_prompt.data.example import Example
    from unified_prompt.search.candidate import Candidate
    from unified_prompt.search.context import SearchContext

_PREFIX = re.compile(r"^\s*(new\s+)?(instruction|prompt)\s*\d*\s*[:.-]\s*", re.IGNORECASE)


class ProposerSpec(BaseModel):
    """Who writes the candidates. Left out: the target backend and model."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    backend: str | None = None
    model: str | None = None
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="The proposer backend's own options.")
    temperature: float = Field(0.9, ge=0)
    max_new_tokens: int = Field(40, ge=4)


class ProposeOptions(StrategyOptions):
    mode: Literal["instruction", "template", "segments"] = Field(
        "instruction", description="What the proposer writes: an instruction put above the "
        "template; a whole template (one line, \\n for line breaks, with the template's "
        "fields and {mask}; a proposal without them is skipped); or new wording for one "
        "piece of the template's text at a time (segments: the words before each field "
        "and before the mask, taken in turn).")
    rounds: int = Field(4, ge=1)
    per_round: int = Field(4, ge=1, description="Proposals per round (one proposer call each).")
    show_examples: int = Field(4, ge=1, description="Training examples in each meta-prompt.")
    show_best: int = Field(6, ge=1, description="Earlier candidates shown, the best ones.")
    seed_instructions: list[str] = Field(default_factory=list,
                                         description="Hand-written instructions scored first.")
    proposer: ProposerSpec = Field(default_factory=ProposerSpec)

    @model_validator(mode="after")
    def _seeds_need_instructions(self) -> ProposeOptions:
        if self.seed_instructions and self.mode == "segments":
            raise ValueError("seed_instructions are instructions or templates; mode segments "
                             "rewrites the template's own wording and takes none")
        return self


def instruction_candidate(base: Candidate, text: str) -> Candidate | None:
    """What a proposal means: a whole template when it has the base template's slots,
    else an instruction written above the base template. None when it is empty."""
    line = _first_line(_PREFIX.sub("", text.strip()))
    if not line:
        return None
    whole = template_candidate(base, line)
    if whole is not None:
        return whole
    escaped = line.replace("{", "{{").replace("}", "}}")
    return base.with_(template=f"{escaped}\n{base.template}", origin="propose:instruction")


def _first_line(text: str) -> str:
    """The first non-empty line of a proposal, without quotes, at most 300 characters."""
    line = next((x.strip() for x in text.strip().splitlines() if x.strip()), "")
    return line.strip("\"'`").strip()[:300]


def template_candidate(base: Candidate, text: str) -> Candidate | None:
    """A proposed whole template (one line, "\\n" for line breaks), or None when it lacks
    the base template's fields or its mask, or does not parse."""
    line = _first_line(text).replace("\\n", "\n")
    fields = Template(base.template).fields
    if "{mask}" not in line or not all("{" + f + "}" in line for f in fields):
        return None
    try:
        template = Template(line)
    except TemplateError:
        return None
    if not template.has_mask or set(template.fields) != set(fields):
        return None
    return base.with_(template=line, origin="propose:template")


def _shown(score: AnyScore) -> float:
    """A candidate's score as the proposer reads it: 0-100."""
    return percent(score.metric, score.value)


_SCORE_AFTER = re.compile(r"\s+\(?\d+(\.\d+)?%?\)?$")
#: A proposed segment: one line of ordinary text, no slots, not too long to be a heading.
_SEGMENT_MAX = 80


def template_segments(template: str, noun: str = "label") -> list[tuple[int, str]]:
    """(part index, where) of each piece of literal wording that leads into a slot: the
    text just before a field or before the mask (the label, or a generation's output),
    when it has a letter in it."""
    parts = Template(template).parts
    out = []
    for i, part in enumerate(parts):
        if not isinstance(part, str) or not any(c.isalpha() for c in part):
            continue
        after = parts[i + 1] if i + 1 < len(parts) else None
        if isinstance(after, FieldSlot):
            out.append((i, f"before each {after.name} input"))
        elif isinstance(after, MaskSlot):
            before = parts[i - 1] if i > 0 else None
            shown = f"the {before.name} input and " if isinstance(before, FieldSlot) else ""
            out.append((i, f"between {shown}the {noun}"))
    return out


def segment_core(text: str) -> tuple[str, str, str]:
    """(leading whitespace, the words, trailing whitespace): only the words are rewritten."""
    core = text.strip()
    if not core:
        return text, "", ""
    start = text.index(core)
    return text[:start], core, text[start + len(core):]


def segment_candidate(base: Candidate, index: int, text: str) -> Candidate | None:
    """`base` with the words of template part `index` replaced by the proposal (its first
    line, up to a closing quote), or None when that is empty, has braces or is too long."""
    line = _first_line(text).split('"')[0].strip()  # it continues an open quote
    line = _SCORE_AFTER.sub("", line)  # a proposer copying the list writes the score too
    if not line or "{" in line or "}" in line or len(line) > _SEGMENT_MAX:
        return None
    parts = list(Template(base.template).parts)
    lead, _, trail = segment_core(parts[index])
    parts[index] = lead + line + trail
    return base.with_(template=write_parts(parts), origin="propose:segment")


def segment_meta_prompt(examples: list[tuple[str, str]], where: str,
                        history: list[tuple[str, float]], noun: str = "label",
                        metric: str = "accuracy") -> str:
    """A list to continue: earlier wordings of one piece of the template, worst to best
    with their accuracy (or the task's metric), then the opening quote of a new one."""
    lines = [f"Examples of inputs and their {noun}s:", ""]
    for text, answer in examples:
        lines += [f"Input: {' '.join(text.split())[:240]}", f"{noun.capitalize()}: {answer}", ""]
    lines.append(f"A prompt shows some words {where}. Versions of those words tried so far, "
                 f"from worst to best, with their {metric} (0-100):")
    lines += [f'"{words}" {acc:.1f}' for words, acc in history]
    return "\n".join(lines) + '\nA new version that scores higher: "'


def shown_template(template: str) -> str:
    return template.replace("\n", "\\n")


def template_meta_prompt(examples: list[tuple[str, str]], history: list[tuple[str, float]],
                         noun: str = "label", metric: str = "accuracy") -> str:
    """OPRO over whole templates: examples, then earlier templates worst to best."""
    lines = ["Templates turn an input into a prompt; {text} is the input and {mask} is where "
             f"the {noun} goes.", "", "Examples:"]
    for text, answer in examples:
        lines += [f"Input: {' '.join(text.split())[:240]}", f"{noun.capitalize()}: {answer}", ""]
    lines.append(f"Earlier templates, from worst to best, with their {metric} (0-100):")
    for template, acc in history:
        lines += [f"Template: {shown_template(template)}", f"{metric.capitalize()}: {acc:.1f}",
                  ""]
    lines.append("Write a new template, different from those above, that scores higher. "
                 "Keep {text} and {mask}.")
    return "\n".join(lines) + "\nTemplate: "


def meta_prompt(examples: list[tuple[str, str]], history: list[tuple[str, float]],
                noun: str = "label", metric: str = "accuracy") -> str:
    """OPRO's meta-prompt: examples, then earlier instructions worst to best with scores."""
    task = "label each input" if noun == "label" else f"write the {noun} for each input"
    lines = [f"Write one instruction that tells a reader how to {task} below.", "",
             "Examples:"]
    for text, answer in examples:
        lines += [f"Input: {' '.join(text.split())[:240]}", f"{noun.capitalize()}: {answer}", ""]
    if history:
        lines.append(f"Earlier instructions, from worst to best, with their {metric} (0-100):")
        for instr, acc in history:
            lines += [f"Instruction: {instr or '(none)'}", f"{metric.capitalize()}: {acc:.1f}",
                      ""]
        lines.append("Write a new instruction, different from those above, that scores higher.")
    else:
        lines.append("Write the instruction in one sentence.")
    return "\n".join(lines) + "\nInstruction: "


class ProposeSearch(Strategy):
    name = "propose"
    summary = "instructions written by a proposer LLM from examples and earlier scores (APE/OPRO)"
    Options = ProposeOptions
    needs = ("score",)
    tasks = ("classification", "generation", "qa")
    options: ProposeOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._proposer: Backend | None = None
        self._own_backend = False
        self._words: dict[str, str] = {}

    def other_backends(self, target: Backend) -> list[tuple[Backend, tuple[str, ...], str]]:
        p = self.options.proposer
        if p.backend is None or (p.backend == target.name and not p.options):
            self._proposer = target
        else:
            from unified_prompt.registry import create_backend

            self._proposer = create_backend(p.backend, p.options)
            self._own_backend = True
        return [(self._proposer, ("generate",), "proposer")]

    def plan(self, info: PlanInput) -> StrategyPlan:
        o = self.options
        dev = info.dev_pass
        n = o.rounds * o.per_round + len(o.seed_instructions)
        return StrategyPlan(min_calls=dev + 1 + dev, lines=[
            f"baseline: {dev} calls (original template on {info.n_dev} dev examples)",
            f"each proposal: 1 proposer call + {dev} dev calls",
            (f"{o.rounds} rounds x {o.per_round} proposals, one piece of the template's "
             f"wording per round: up to {n * (dev + 1):,} calls") if o.mode == "segments" else
            (f"{len(o.seed_instructions)} seed instructions, then {o.rounds} rounds x "
             f"{o.per_round} proposals: up to {n * (dev + 1):,} calls")])

    def search(self, ctx: SearchContext) -> None:
        assert ctx.original is not None
        o = self.options
        base = ctx.original
        proposer = self._proposer or ctx.backend
        p = o.proposer
        if proposer is ctx.backend and (p.model is None or p.model == ctx.spec.backend.model):
            model = ctx.model
        else:
            model = proposer.load_model(p.model or ctx.spec.backend.model)
        pricer = Pricer(proposer, p.model or ctx.spec.backend.model)
        _, builder = ctx.objective.builder(base)
        rejected: list[str] = []

        def propose(meta: Callable[[list[tuple[str, str]]], str],
                    stop: tuple[str, ...] = ("\n",)) -> list[str]:
            """One round of proposals, each from its own sample of training examples."""
            prompts = []
            for _ in range(o.per_round):
                examples: list[Example] = ctx.sample(ctx.train, o.show_examples)
                pairs = [(ex.text, builder.answer(ex)) for ex in examples]
                prompts.append(Rendered.of([Text(meta(pairs)), Mask()]))
            params = GenerationParams(max_new_tokens=p.max_new_tokens, temperature=p.temperature,
                                      stop=stop, seed=int(ctx.rng.integers(2**31)))
            ctx.meter.charge(pricer.generate(prompts, p.max_new_tokens))
            return proposer.generate(model, prompts, params, batch_size=len(prompts))

        # how the meta-prompts name the answer and the score they show
        self._words = ({"noun": "output", "metric": objective_metrics(ctx.spec)[0]}
                       if ctx.objective.generation else {})
        # written first: a search usually ends when the budget runs out, mid-round
        ctx.extras["proposer"] = {"backend": proposer.name,
                                  "model": p.model or ctx.spec.backend.model,
                                  "rejected": rejected}
        if o.mode == "segments":
            self._segments(ctx, propose, rejected)
        else:
            self._instructions(ctx, propose, rejected)

    def _instructions(self, ctx: SearchContext, propose: Callable[..., list[str]],
                      rejected: list[str]) -> None:
        """Instructions above the template, or whole templates (OPRO)."""
        assert ctx.original is not None
        o = self.options
        base = ctx.original
        templates = o.mode == "template"
        history: dict[str, tuple[str, float]] = {}
        original, _ = ctx.objective.dev_score(base, ctx.dev)
        history[base.key()] = (base.template if templates else "", _shown(original))
        for text in o.seed_instructions:
            cand = instruction_candidate(base, text)
            if cand is not None:
                score = ctx.consider(cand.with_(origin="propose:seed"), instruction=text, round=0)
                history[cand.key()] = (text, _shown(score))
        for rnd in range(1, o.rounds + 1):
            shown = sorted(history.values(), key=lambda t: (t[1], t[0]))[-o.show_best:]
            texts = propose(partial(template_meta_prompt if templates else meta_prompt,
                                    history=shown, **self._words))
            for text in texts:
                cand = (template_candidate if templates else instruction_candidate)(base, text)
                if cand is None:
                    rejected.append(text.strip())
                    continue
                score = ctx.consider(cand, instruction=text.strip(), round=rnd)
                instr = cand.template[: -len(base.template)].strip() \
                    if cand.origin == "propose:instruction" else cand.template
                history[cand.key()] = (instr.replace("{{", "{").replace("}}", "}"),
                                       _shown(score))

    def _segments(self, ctx: SearchContext, propose: Callable[..., list[str]],
                  rejected: list[str]) -> None:
        """One piece of the template's wording per round, in turn, on top of the best
        template so far; each piece's earlier wordings are shown worst to best."""
        assert ctx.original is not None
        o = self.options
        current = ctx.original
        pieces = template_segments(current.template, self._words.get("noun", "label"))
        if not pieces:
            raise UserInputError(
                f"propose mode segments: the template {current.template!r} has no wording "
                "before a field or before {mask} to rewrite; use mode instruction or template")
        # the run scored the original (under each calibration) before the search began
        current_score = ctx.best_score
        assert current_score is not None and ctx.best is not None
        assert ctx.best.prompt_key() == current.prompt_key()
        parts = Template(current.template).parts
        history = {i: {segment_core(parts[i])[1]: _shown(current_score)} for i, _ in pieces}
        for rnd in range(1, o.rounds + 1):
            index, where = pieces[(rnd - 1) % len(pieces)]
            shown = sorted(history[index].items(), key=lambda t: (t[1], t[0]))[-o.show_best:]
            texts = propose(partial(segment_meta_prompt, where=where, history=shown,
                                    **self._words), stop=('"', "\n"))
            for text in texts:
                cand = segment_candidate(current, index, text)
                if cand is None:
                    rejected.append(text.strip())
                    continue
                words = segment_core(Template(cand.template).parts[index])[1]
                if words in history[index]:
                    continue  # a wording already tried (the proposer often repeats one)
                score = ctx.consider(cand, proposal=text.strip(), round=rnd, segment=where)
                history[index][words] = _shown(score)
                if ctx.better(score, current_score):
                    current, current_score = cand, score

    def close(self) -> None:
        if self._own_backend and self._proposer is not None:
            self._proposer.close()
