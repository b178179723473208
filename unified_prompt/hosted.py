"""Training files for hosted fine-tuning, built from the same prompts every backend sees."""

from __future__ import annotations

import random
import warnings
from pathlib import Path

from unified_prompt.config import ExperimentSpec
from unified_prompt.data.conversations import MESSAGES, is_conversation
from unified_prompt.data.example import Example
from unified_prompt.data.hosted_format import MIN_EXAMPLES, chat_example, dpo_example, write_training_file
from unified_prompt.data.resolve import Splits
from unified_prompt.prompts.builder import PromptBuilder


def _rows(spec: ExperimentSpec, builder: PromptBuilder, examples: list[Example]) -> list[dict]:
    kind = getattr(spec.finetune, "kind", "supervised")
    if any(is_conversation(ex) for ex in examples):  # multi-turn chat data, uploaded as is
        return [{"messages": builder.chat_turns(ex.meta[MESSAGES])} for ex in examples]
    prompts = [p.prefix_text() for p in builder.render(examples)]
    answers = [builder.answer(ex) for ex in examples]
    system = spec.prompt.system  # prompt.chat's system message: trained as it is sent
    if kind == "supervised":
        return [chat_example(p, a, system) for p, a in zip(prompts, answers, strict=False)]
    rng = random.Random(spec.train_seed())
    rows = []
    for i, (p, a, ex) in enumerate(zip(prompts, answers, examples, strict=False)):
        if builder.verbalizer is not None:
            others = [builder.verbalizer.answer(lab) for lab in builder.verbalizer.labels
                      if lab != ex.label]
        else:
            others = [answers[j] for j in range(len(answers)) if j != i and answers[j] != a]
        rows.append(dpo_example(p, a, rng.choice(others), system))
    return rows


def hosted_training_files(spec: ExperimentSpec, builder: PromptBuilder, splits: Splits,
                          folder: Path) -> tuple[Path, Path | None]:
    """Write and validate train (and validation) JSONL; raises DataError before any upload."""
    kind = getattr(spec.finetune, "kind", "supervised")
    limit = getattr(spec.finetune, "train_limit", None)
    train = splits.train[:limit] if limit else splits.train
    train_path = Path(folder) / f"train.{kind}.jsonl"
    write_training_file(train_path, _rows(spec, builder, train), kind)
    val_path = None
    dev = splits.dev[:500]
    if getattr(spec.finetune, "validation", False) and 0 < len(dev) < MIN_EXAMPLES:
        warnings.warn(f"the dev split has {len(dev)} examples, fewer than the {MIN_EXAMPLES} a "
                      "validation file needs; training without one", stacklevel=2)
    elif getattr(spec.finetune, "validation", False) and dev:
        val_path = Path(folder) / f"validation.{kind}.jsonl"
        write_training_file(val_path, _rows(spec, builder, dev), kind)
    return train_path, val_path
