"""The experiment spec: one YAML file (or the same objects in Python) for every backend.

Every model forbids unknown keys, so a typo is an error naming its key path rather than
a silently ignored setting. Nothing here names a framework class: a spec names registry
keys (`backend.name: hf`, `finetune.method: lora`), so one file runs on every backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from unified_prompt.errors import ConfigError, TemplateError
from unified_prompt.methods import (  # noqa: F401 - re-exported: the spec's public names
    LOCAL_METHODS,
    METHODS,
    SOFT_SLOT_METHODS,
    FinetuneSpec,
    FullSpec,
    HostedSpec,
    LoraSpec,
    NoFinetune,
    PrefixTuningSpec,
    PromptTuningSpec,
    PTuningSpec,
    TrainSpec,
)
from unified_prompt.sampling import DecodingSpec
from unified_prompt.strict import MAX_DIM, Seed, Strict
from unified_prompt.yaml_io import YamlRefusedError, compose_yaml, parse_yaml, read_yaml_file

Split = Literal["train", "dev", "test"]
#: qa: answers generated from a context and question, scored by SQuAD's exact match and F1.
#: ner: entities generated as `TYPE: span; ...`, scored by seqeval's entity-level P/R/F1.
Task = Literal["classification", "generation", "qa", "ner"]
#: How label scores are calibrated (unified_prompt.prompts.calibration).
CalibrationMethod = Literal["none", "contextual", "batch"]
#: How generated text is split into tokens for BLEU / ROUGE (unified_prompt.metrics).
Tokenize = Literal["auto", "13a", "zh", "char", "intl", "none"]


# -- backend -------------------------------------------------------------------------
class BackendSpec(Strict):
    name: str = "hf"
    model: str = "smollm2-135m"
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per-backend options keyed by backend name; each backend validates its own.")

    def options_for(self, name: str | None = None) -> dict[str, Any]:
        return dict(self.options.get(name or self.name, {}))


# -- data ----------------------------------------------------------------------------
class DataFiles(Strict):
    train: Path | None = None
    dev: Path | None = None
    test: Path | None = None


class SplitSpec(Strict):
    """Fractions used to cut splits the data does not provide; stratified by label."""

    train: float = 0.8
    dev: float = 0.1
    test: float = 0.1
    seed: Seed = Field(0, description="Kept apart from the experiment seed so splits stay fixed.")

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitSpec:
        total = self.train + self.dev + self.test
        if abs(total - 1.0) > 1e-6 or min(self.train, self.dev, self.test) < 0:
            raise ValueError(f"split fractions must be >= 0 and sum to 1 (got {total:g})")
        return self


# -- data augmentation (unified_prompt.augmentation) ----------------------------------
class DemoAugmentSpec(Strict):
    """LM-BFF style: each training example again, with k demonstrations drawn from the
    other training examples in front of it."""

    k: int = Field(1, ge=1, le=64, description="Demonstrations per label (classification) or "
                   "in all (generation, qa).")
    copies: int = Field(1, ge=1, le=64, description="Extra examples per training example, "
                        "each with its own draw of demonstrations.")


class AugmentSpec(Strict):
    """Extra training examples made from the train split (never dev or test)."""

    templates: list[str] = Field(
        default_factory=list, description="Template paraphrase: each training example once "
        "more under each of these templates (same slots as prompt.template).")
    demonstrations: DemoAugmentSpec | None = None
    seed: Seed | None = Field(None, description="Default: the experiment seed.")

    @field_validator("templates")
    @classmethod
    def _templates_parse(cls, v: list[str]) -> list[str]:
        from unified_prompt.prompts.template import Template

        for i, source in enumerate(v):
            try:
                Template(source)
            except TemplateError as exc:
                raise ValueError(f"templates[{i}]: {exc}") from None
        return v

    @model_validator(mode="after")
    def _some_method(self) -> AugmentSpec:
        if not self.templates and self.demonstrations is None:
            raise ValueError("data.augment names no method: give templates and/or "
                             "demonstrations")
        return self


class DataSpec(Strict):
    dataset: str | None = Field(None, description="A bundled dataset (`unified-prompt datasets`).")
    files: DataFiles | None = None
    format: Literal["auto", "jsonl", "csv", "tsv", "conll"] = Field(
        "auto", description="conll: token and tag columns, a blank line between sentences "
        "(task: ner).")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Example field -> column in the files (text, label, target, id, ...).")
    label_map: dict[str, str] = Field(default_factory=dict,
                                      description="Raw label value -> label name.")
    split: SplitSpec = Field(default_factory=SplitSpec)
    limit: dict[Split, int] = Field(default_factory=dict,
                                    description="At most this many examples per split.")
    k_shot: int | None = Field(None, ge=1, description="Sample k training examples per label.")
    augment: AugmentSpec | None = Field(
        None, description="Extra training examples from the train split; see AugmentSpec.")

    @model_validator(mode="after")
    def _one_source(self) -> DataSpec:
        if (self.dataset is None) == (self.files is None):
            raise ValueError("give exactly one of data.dataset or data.files")
        return self

    @field_validator("limit")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        for k, n in v.items():
            if n < 1:
                raise ValueError(f"limit for {k} must be >= 1")
        return v


# -- prompt --------------------------------------------------------------------------
class DemoSpec(Strict):
    k: int = Field(0, ge=0, description="Demonstrations per label (classification) or in all; "
                   "with selection: fixed, the number of ids (filled in when left out).")
    selection: Literal["random", "similarity", "fixed"] = "random"
    ids: list[str] | None = Field(
        None, description="selection: fixed: these training examples, in this order (a set "
                          "found by `unified-prompt search --strategy demos`).")
    separator: str = "\n\n"

    @model_validator(mode="before")
    @classmethod
    def _count_fixed(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("selection") == "fixed" and not data.get("k") \
                and isinstance(data.get("ids"), list):
            data = {**data, "k": len(data["ids"])}
        return data

    @model_validator(mode="after")
    def _fixed_ids(self) -> DemoSpec:
        if self.selection == "fixed" and not self.ids:
            raise ValueError("demonstrations.selection: fixed needs ids (training example ids)")
        if self.ids is not None and self.selection != "fixed":
            raise ValueError("demonstrations.ids is read only with selection: fixed")
        return self


class CalibrationSpec(Strict):
    method: CalibrationMethod = "none"
    content_free: list[str] = Field(default_factory=lambda: ["N/A", "", "[MASK]"])


class PromptSpec(Strict):
    template: str
    verbalizer: dict[str, str | list[str]] | None = None
    demonstrations: DemoSpec = Field(default_factory=DemoSpec)
    calibration: CalibrationSpec = Field(default_factory=CalibrationSpec)
    word_score: Literal["sum", "mean"] = Field(
        "sum", description="Multi-token label words: summed or per-token mean log-prob.")
    truncate: dict[str, int] = Field(default_factory=dict,
                                     description="Field -> max characters before rendering.")
    chat: bool = Field(False, description="Send the rendered prompt as the user's message "
                       "through the model's chat template (instruction-tuned models); the "
                       "output or label word follows the assistant header.")
    system: str | None = Field(None, description="prompt.chat: the system message.")
    entity_types: list[str] | dict[str, str] | None = Field(
        None, description="task: ner: the entity types a model may name (PER, LOC, ...), or "
        "type -> description; a template's {entity_types} shows them.")

    @field_validator("entity_types")
    @classmethod
    def _entity_types(cls, v: list[str] | dict[str, str] | None
                      ) -> list[str] | dict[str, str] | None:
        if v is None:
            return v
        names = list(v)
        if not names:
            raise ValueError("give at least one entity type")
        for name in names:
            if not name.strip() or name != name.strip() or any(c in name for c in ":：;；\n"):
                raise ValueError(f"entity type {name!r}: a type is a non-empty name without "
                                 "surrounding spaces, ':' or ';'")
        folded = [n.casefold() for n in names]
        if len(set(folded)) != len(folded):
            raise ValueError(f"entity types repeat (ignoring case): {names}")
        return v

    @field_validator("calibration", mode="before")
    @classmethod
    def _calibration_shorthand(cls, v: Any) -> Any:
        return {"method": v} if isinstance(v, str) else v

    @field_validator("template")
    @classmethod
    def _parses(cls, v: str) -> str:
        from unified_prompt.prompts.template import Template

        try:
            Template(v)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return v


# -- finetune: the methods' spec classes and their registry live in unified_prompt.methods


# -- eval / budget -------------------------------------------------------------------
class EvalSpec(Strict):
    split: Split = "test"
    metrics: list[str] | None = Field(None, description="Default: by task.")
    limit: int | None = Field(None, ge=1)
    batch_size: int = Field(16, ge=1)
    max_new_tokens: int = Field(32, ge=1, le=MAX_DIM)
    decoding: DecodingSpec = Field(default_factory=DecodingSpec, description="Generation and "
                                   "qa: temperature, top_p, n outputs, seed, stop strings.")
    tokenize: Tokenize = Field(
        "auto", description="How BLEU, ROUGE and qa's F1 split text into tokens: auto (zh when the "
        "references or outputs hold Chinese or Japanese characters, else 13a), or one of "
        "sacrebleu's tokenizers: 13a, zh, char, intl, none.")
    adapter: str | None = Field(
        None, description="Evaluate with this saved adapter folder (from a run's adapter/ or "
        "`unified-prompt convert`) instead of training; finetune.method none adopts the "
        "adapter's method settings.")


class BudgetSpec(Strict):
    """Spending limits, checked before and during a run or search."""

    max_requests: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_cost_usd: float | None = Field(None, ge=0)


class MlflowSpec(Strict):
    uri: str | None = Field(None, description="Tracking URI; default: a sqlite store beside the "
                            "run directory (sqlite:///<its parent>/mlflow.db).")
    experiment: str | None = Field(None, description="Default: the spec's name, else "
                                   "'unified-prompt'.")


class TrackingSpec(Strict):
    """Where a run's event stream is mirrored besides events.jsonl (never breaks a run)."""

    tensorboard: bool = Field(True, description="TensorBoard event files in RUN/tensorboard.")
    mlflow: MlflowSpec | None = Field(None, description="Log params, metrics and the run "
                                      "directory to MLflow (pip install 'unified-prompt[mlflow]').")

    @field_validator("mlflow", mode="before")
    @classmethod
    def _mlflow_shorthand(cls, v: Any) -> Any:
        if v is True:
            return {}
        return None if v is False else v


# -- mixture: several classification tasks trained together (unified_prompt.mixture) --
class MixtureTask(Strict):
    """One more task of a mixture: its own data, prompt (template, verbalizer) and weight."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    weight: float = Field(1.0, gt=0, description="Share of training examples drawn from this "
                          "task: weight / (sum of the mixture's weights).")
    data: DataSpec
    prompt: PromptSpec


class MixtureSpec(Strict):
    """`mixture:` trains the spec's own task (top-level data and prompt, the first task)
    together with `tasks`, batches sampled by weight; each task is evaluated on its own."""

    name: str = Field("main", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                      description="The name of the spec's own task in per-task metrics.")
    weight: float = Field(1.0, gt=0, description="The spec's own task's weight.")
    tasks: list[MixtureTask] = Field(min_length=1)


class ExperimentSpec(Strict):
    name: str | None = None
    task: Task = "classification"
    seed: Seed = 13
    seeds: list[Seed] | None = Field(
        None, description="Run once per seed (`seed: [1, 2, 3]` in YAML sets this, and seed "
        "to the first); `unified-prompt run` then writes OUT/seed-<n>/ and aggregates them.")
    backend: BackendSpec = Field(default_factory=BackendSpec)
    data: DataSpec
    prompt: PromptSpec
    finetune: FinetuneSpec = Field(default_factory=NoFinetune)
    eval: EvalSpec = Field(default_factory=EvalSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)
    mixture: MixtureSpec | None = Field(None, description="Multi-task training: more "
                                        "classification tasks mixed by weight.")

    @model_validator(mode="before")
    @classmethod
    def _seed_list(cls, data: Any) -> Any:
        """`seed: [1, 2, 3]` is the list form: the seeds, with seed the first of them."""
        if isinstance(data, dict) and isinstance(data.get("seed"), list):
            if data.get("seeds") is not None:
                raise ValueError("give the seeds once: `seed: [1, 2, 3]` or `seeds:`, not both")
            data = dict(data)
            data["seeds"] = data.pop("seed")
            first = data["seeds"][0] if data["seeds"] else None
            if isinstance(first, int) and not isinstance(first, bool):
                data["seed"] = first
        return data

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and not v:
            raise ValueError("the list of seeds is empty")
        if v is not None and len(set(v)) != len(v):
            raise ValueError(f"seeds repeat: {v}")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> ExperimentSpec:
        from unified_prompt.prompts.template import Template

        template = Template(self.prompt.template)
        if self.task == "classification":
            if not self.prompt.verbalizer or len(self.prompt.verbalizer) < 2:
                raise ValueError("prompt.verbalizer: classification needs at least two labels")
            if not template.has_mask:
                raise ValueError("prompt.template: classification needs a {mask} slot")
            from unified_prompt.prompts.verbalizer import Verbalizer

            try:
                Verbalizer(self.prompt.verbalizer)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        if self.task == "ner" and not self.prompt.entity_types:
            raise ValueError("prompt.entity_types: task ner needs the entity types the model "
                             "may name, e.g. [PER, LOC, ORG]")
        if self.data.format == "conll" and self.task != "ner":
            raise ValueError(f"data.format: conll (token and tag columns) is read for task "
                             f"ner only; this spec's task is {self.task!r}")
        method = self.finetune.method
        if self.prompt.chat and (template.soft_slots or METHODS[method].soft_slots):
            raise ValueError("prompt.chat: soft prompts ({soft} slots, prompt_tuning, "
                             "p_tuning) cannot go inside a chat template; use prefix_tuning, "
                             "lora or full")
        if self.task == "classification" and self.eval.decoding != DecodingSpec():
            raise ValueError("eval.decoding: classification scores label words; decoding "
                             "options apply to generation and qa")
        if self.prompt.system is not None and not self.prompt.chat:
            raise ValueError("prompt.system is read only with prompt.chat: true")
        # -- finetune.objective (unified_prompt.objectives) --
        from unified_prompt.objectives import objective_problem

        problem = objective_problem(self.task, method, getattr(self.finetune, "objective", None))
        if problem:
            raise ValueError(problem)
        if self.mixture is not None:
            from unified_prompt.mixture_checks import mixture_problem

            problem = mixture_problem(self)
            if problem:
                raise ValueError(problem)
        if template.soft_slots and not METHODS[method].soft_slots:
            raise ValueError("prompt.template has {soft} slots, which only "
                             f"{' or '.join(SOFT_SLOT_METHODS)} train (finetune.method is "
                             f"{method!r})")
        return self

    @property
    def metrics(self) -> list[str]:
        if self.eval.metrics:
            return list(self.eval.metrics)
        return {"classification": ["accuracy", "macro_f1"], "qa": ["exact_match", "f1"],
                "ner": ["precision", "recall", "f1", "parse_rate"]}.get(
            self.task, ["rouge_l", "bleu"])

    @property
    def model_task(self) -> Literal["classification", "generation"]:
        """What the backend does: score label words, or generate text (generation, qa, ner)."""
        return "classification" if self.task == "classification" else "generation"

    def train_seed(self) -> int:
        seed = getattr(self.finetune, "seed", None)
        return self.seed if seed is None else seed

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


# -- loading, overrides, error messages ----------------------------------------------
def _line_index(text: str) -> dict[tuple[str, ...], int]:
    """Key path -> 1-based line, from the YAML node tree (for errors that name a line)."""
    index: dict[tuple[str, ...], int] = {}
    root = compose_yaml(text)

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                index[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                sub = (*path, str(i))
                index[sub] = value.start_mark.line + 1
                walk(value, sub)

    if root is not None:
        walk(root, ())
    return index


_TYPE_TAGS = {"str", "int", "float", "bool", "[key]"}


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str, ...]:
    """Drop the union tags pydantic inserts (`finetune.lora.r` -> `finetune.r`)."""
    out: list[str] = []
    for part in loc:
        s = str(part)
        if out == ["finetune"] and s in METHODS:
            continue
        if s in _TYPE_TAGS or "[" in s:
            continue
        out.append(s)
    return tuple(out)


def config_error_from(exc: ValidationError, *, source: str | None = None,
                      text: str | None = None) -> ConfigError:
    lines = _line_index(text) if text else {}
    problems: list[tuple[str, str]] = []
    rendered: list[str] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors():
        loc = _clean_loc(tuple(err.get("loc", ())))
        key = ".".join(loc) or "(top level)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        elif err.get("type") == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if (key, msg) in seen:
            continue
        seen.add((key, msg))
        problems.append((key, msg))
        line = None
        for n in range(len(loc), 0, -1):
            if loc[:n] in lines:
                line = lines[loc[:n]]
                break
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
        rendered.append(f"{where}{key}: {msg}")
    head = f"invalid experiment spec{f' {source}' if source else ''}"
    return ConfigError(head + "\n  " + "\n  ".join(rendered), source=source, problems=problems)


def parse_override(item: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (['a','b','c'], value parsed as YAML, so 3 is int and [a,b] a list).

    Template-like text ("Review: {text} {mask}") stays a string; quote a value to force one.
    """
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected key.path=value",
                          problems=[(item, "no '='")])
    key, raw = item.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {item!r}: empty key", problems=[(item, "empty key")])
    try:
        value = parse_yaml(raw) if raw.strip() else ""
    except YamlRefusedError as exc:
        raise ConfigError(f"--set {key.strip()}: {exc.problem}",
                          problems=[(key.strip(), exc.problem)]) from None
    except ConfigError:
        value = raw  # not YAML: the text itself
    if isinstance(value, dict) and (not raw.lstrip().startswith("{")
                                    or any(v is None for v in value.values())):
        value = raw  # "Review: {text}" or "{mask}" are text, not YAML mappings
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"--set {item!r}: {where} is not a mapping",
                                  problems=[(where, "not a mapping")])
            node = nxt
        node[path[-1]] = value
    return data


def _read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    data, text = read_yaml_file(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the spec must be a mapping of keys, not {type(data).__name__}",
                          source=str(path))
    return data, text


def _resolve_paths(spec: ExperimentSpec, base: Path) -> ExperimentSpec:
    """Data files are relative to the spec file, so a spec runs from any directory."""
    tasks = spec.mixture.tasks if spec.mixture is not None else []
    for data in (spec.data, *(t.data for t in tasks)):
        if data.files is None:
            continue
        updated = {k: (v if v is None or v.is_absolute() else (base / v)) for k, v in
                   data.files.model_dump().items()}
        data.files = DataFiles(**updated)
    return spec


def build_spec(data: dict[str, Any], *, source: str | None = None, text: str | None = None,
               base_dir: Path | None = None) -> ExperimentSpec:
    try:
        spec = ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        raise config_error_from(exc, source=source, text=text) from None
    return _resolve_paths(spec, base_dir) if base_dir is not None else spec


def load_spec(path: str | Path, *, overrides: list[str] | None = None,
              backend: str | None = None) -> ExperimentSpec:
    """Read a YAML spec, apply `--set` overrides and a `--backend` switch, validate."""
    path = Path(path)
    data, text = _read_yaml(path)
    return spec_from_data(data, overrides=overrides, backend=backend, source=str(path),
                          text=text, base_dir=path.parent)


def spec_from_data(data: dict[str, Any], *, overrides: list[str] | None = None,
                   backend: str | None = None, source: str | None = None,
                   text: str | None = None, base_dir: Path | None = None) -> ExperimentSpec:
    """Spec data (changed in place) with `--set` overrides and a `--backend` switch, validated."""
    apply_overrides(data, list(overrides or []))
    if backend:
        data.setdefault("backend", {})
        if not isinstance(data["backend"], dict):
            raise ConfigError(f"{source or 'spec'}: backend must be a mapping", source=source)
        data["backend"]["name"] = backend
    return build_spec(data, source=source, text=text, base_dir=base_dir)
