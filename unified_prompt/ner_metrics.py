"""Entity-level scores for task: ner, computed by seqeval on IOB2 sequences.

A generation is parsed (unified_prompt.ner_format), its spans placed back on the tokens as
IOB2 tags, and seqeval scores gold against predicted sequences with its default
(conlleval) rules: an entity counts only when its type and both boundaries match.

- `precision`, `recall`, `f1`: micro averages over all entities (seqeval's `micro avg`),
  fractions 0-1. A predicted span found nowhere in the text is a false positive: it is
  scored on one extra token after the sentence, tagged O in the gold sequence.
- `parse_rate`: the share of output items read as `TYPE: span` with an allowed type, or
  `none` (1 when a model wrote nothing). The counts behind it, seqeval's per-type figures
  and the unplaced spans go into metrics.json under `ner`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from unified_prompt.data.example import Example
from unified_prompt.metrics import NER, check_metric_names
from unified_prompt.ner_format import (
    entities_from_tags,
    entity_list,
    parse_entities,
    place_entities,
    tokenize,
)

_ROUND = 6


def seqeval_report(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
                   ) -> dict[str, dict[str, float]]:
    """seqeval's classification report as a dict: per type and `micro avg`, `macro avg`,
    `weighted avg` (precision, recall, f1-score, support); zero where undefined."""
    from seqeval.metrics import classification_report

    if not any(t != "O" for seq in (*gold, *pred) for t in seq):
        return {"micro avg": {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}}
    return classification_report([list(s) for s in gold], [list(s) for s in pred],
                                 output_dict=True, zero_division=0)


def _figures(row: dict[str, Any]) -> dict[str, float]:
    return {"precision": round(float(row["precision"]), _ROUND),
            "recall": round(float(row["recall"]), _ROUND),
            "f1": round(float(row["f1-score"]), _ROUND), "support": int(row["support"])}


def ner_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
               ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """(micro precision/recall/f1, per-type figures with support) of IOB2 sequences."""
    report = seqeval_report(gold, pred)
    micro = _figures(report["micro avg"])
    per_type = {k: _figures(v) for k, v in sorted(report.items()) if not k.endswith(" avg")}
    return {k: micro[k] for k in ("precision", "recall", "f1")}, per_type


def entities_in(text: str, generation: str, entity_types: Sequence[str]
                ) -> list[dict[str, Any]]:
    """The entities a generation names that occur in `text`: type, text, character start
    and end (what Predictor returns for new inputs)."""
    pieces = tokenize(text)
    tokens = [t for t, _ in pieces]
    tags, _ = place_entities(tokens, parse_entities(generation, entity_types).entities)
    out = []
    for ent in entities_from_tags(tags):
        start = pieces[ent.start][1]
        end = pieces[ent.end - 1][1] + len(tokens[ent.end - 1])
        out.append({"type": ent.type, "text": text[start:end], "start": start, "end": end})
    return out


def ner_evaluation(examples: Sequence[Example], generations: Sequence[str],
                   entity_types: Sequence[str], names: Sequence[str] = NER
                   ) -> tuple[dict[str, float], list[dict[str, Any]], dict[str, Any]]:
    """(metrics named in `names`, one prediction row per example, the `ner` details)."""
    check_metric_names(names, "ner")
    gold_seqs: list[list[str]] = []
    pred_seqs: list[list[str]] = []
    rows: list[dict[str, Any]] = []
    items = errors = unplaced_n = 0
    for ex, text in zip(examples, generations, strict=True):
        parsed = parse_entities(text, entity_types)
        tags, unplaced = place_entities(ex.tokens, parsed.entities)
        gold_seqs.append([*ex.tags, *(["O"] * len(unplaced))])
        pred_seqs.append([*tags, *(f"B-{kind}" for kind, _ in unplaced)])
        items += parsed.items
        errors += len(parsed.errors)
        unplaced_n += len(unplaced)
        surface = (ex.fields.get("text"), (ex.meta or {}).get("offsets"))
        rows.append({
            "id": ex.id, "text": ex.fields.get("text", ""), "target": ex.target,
            "entities": [{"type": t, "text": s}
                         for t, s in entity_list(ex.tokens, ex.tags, *surface)],
            "predicted": [{"type": t, "text": s} for t, s in entity_list(ex.tokens, tags, *surface)],
            "prediction": text, "format_errors": parsed.errors,
            "unplaced": [{"type": t, "text": s} for t, s in unplaced]})
    micro, per_type = ner_scores(gold_seqs, pred_seqs)
    parse_rate = 1.0 if items == 0 else (items - errors) / items
    everything = {**micro, "parse_rate": round(parse_rate, _ROUND)}
    details = {"per_type": per_type, "output_items": items, "format_errors": errors,
               "unplaced": unplaced_n,
               "gold_entities": sum(int(v["support"]) for v in per_type.values()),
               "scheme": "IOB2, seqeval default (conlleval) matching, micro average"}
    return {n: everything[n] for n in names}, rows, details
