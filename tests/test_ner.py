"""task: ner: the output format read both ways, entity-level scores worked by hand and
checked against seqeval, the three data shapes and their errors, and runs end to end on
the fake backend (through the CLI and trained with LoRA)."""

import json

import pytest
import yaml
from pydantic import ValidationError

from tests.conftest import ROOT, run_cli
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.ner_data import from_spans, from_tags, load_ner_file
from unified_prompt.errors import DataError
from unified_prompt.ner_format import (
    entity_list,
    join_tokens,
    parse_entities,
    place_entities,
    render_entities,
    to_iob2,
    tokenize,
)
from unified_prompt.ner_metrics import entities_in, ner_evaluation, ner_scores
from unified_prompt.prompts.builder import PromptBuilder

EXAMPLE = ROOT / "examples" / "ner.yaml"
TYPES = ["PER", "LOC", "ORG"]


# -- the format ------------------------------------------------------------------------
def test_text_is_tokenized_per_cjk_character_and_joined_without_spaces_there():
    assert [t for t, _ in tokenize("江泽民在北京说: U.S. is big, １９９８年")] == \
        ["江", "泽", "民", "在", "北", "京", "说", ":", "U", ".", "S", ".", "is", "big", ",",
         "１", "９", "９", "８", "年"]
    assert join_tokens(["EU", "rejects", "German", "call", "."]) == \
        ("EU rejects German call .", [0, 3, 11, 18, 23])
    assert join_tokens(["李", "明", "met", "Tom", "。"])[0] == "李明met Tom。"


def test_tags_are_read_as_iob1_iob2_or_bioes():
    assert to_iob2(["I-ORG", "O", "I-MISC", "I-MISC", "I-PER", "B-PER"]) == \
        ["B-ORG", "O", "B-MISC", "I-MISC", "B-PER", "B-PER"]
    assert to_iob2(["S-LOC", "B-PER", "E-PER", "O"]) == ["B-LOC", "B-PER", "I-PER", "O"]
    with pytest.raises(ValueError, match="tag 1 'PER' is not a BIO tag"):
        to_iob2(["O", "PER"])


def test_targets_list_each_entity_once_in_order_or_none():
    tokens = ["Tom", "met", "Ann", "in", "Rome", ";", "Tom", "left", "Rome"]
    tags = ["B-PER", "O", "B-PER", "O", "B-LOC", "O", "B-PER", "O", "B-LOC"]
    assert render_entities(entity_list(tokens, tags)) == "PER: Tom; PER: Ann; LOC: Rome"
    assert render_entities(entity_list(["a", "b"], ["O", "O"])) == "none"


def test_parsing_is_lenient_in_defined_ways_and_counts_what_it_cannot_read():
    p = parse_entities('- per: "John Smith"; LOC：Paris；1. ORG: Acme\nnonsense; DATE: May; '
                       "PER:; None.", TYPES)
    assert p.entities == [("PER", "John Smith"), ("LOC", "Paris"), ("ORG", "Acme")]
    # nonsense (no colon), DATE (not a type), PER: (empty span) are errors; None is not
    assert p.errors == ["nonsense", "DATE: May", "PER:"] and p.items == 7
    assert parse_entities("", TYPES).items == 0


def test_spans_are_placed_ignoring_spaces_then_case_on_token_boundaries():
    tokens = ["New", "York", "and", "new", "york", "and", "Newark", "."]
    tags, unplaced = place_entities(tokens, [("LOC", "NewYork"), ("LOC", "Newar"),
                                             ("ORG", "Tokyo")])
    # exact (space-blind) match wins over the case-blind one; "Newar" cuts a token
    assert tags == ["B-LOC", "I-LOC", "O", "O", "O", "O", "O", "O"]
    assert unplaced == [("LOC", "Newar"), ("ORG", "Tokyo")]
    # "NEW YORK" matches nothing exactly, so case is ignored: both occurrences are tagged
    tags, _ = place_entities(tokens, [("LOC", "NEW YORK")])
    assert tags == ["B-LOC", "I-LOC", "O", "B-LOC", "I-LOC", "O", "O", "O"]


def test_longer_spans_are_placed_first_and_every_free_occurrence_is_tagged():
    tokens = list("中国人在中国国际广播电台工作")
    tags, unplaced = place_entities(tokens, [("LOC", "中国"), ("ORG", "中国国际广播电台")])
    assert tags[:3] == ["B-LOC", "I-LOC", "O"]
    assert tags[4:12] == ["B-ORG"] + ["I-ORG"] * 7 and unplaced == []
    tags, unplaced = place_entities(tokens, [("ORG", "中国国际广播电台"), ("LOC", "国际广播")])
    assert unplaced == [("LOC", "国际广播")]  # its only occurrence is inside the ORG


# -- scores ----------------------------------------------------------------------------
def _examples():
    en = from_spans("en", "John Smith flew from Paris to New York.",
                    [{"type": "PER", "text": "John Smith"}, {"type": "LOC", "text": "Paris"},
                     {"type": "LOC", "text": "New York"}])
    zh = from_spans("zh", "王芳在北京大学读书。", [[0, 2, "PER"], [3, 7, "ORG"]])
    return [en, zh]


def test_precision_recall_f1_worked_by_hand():
    """en: PER John (wrong boundary: one FP, and John Smith missed), LOC Paris and LOC New
    York right, ORG Acme not in the text (FP), `blah` unreadable. zh: PER 王芳 right,
    LOC 北京 a FP (gold says ORG 北京大学, missed). TP 3, predicted 6, gold 5:
    P = 1/2, R = 3/5, F1 = 2PR/(P+R) = 6/11. Items 5 + 2, one format error."""
    hyps = ["PER: John; LOC: Paris; LOC: New York; ORG: Acme; blah", "PER：王芳；LOC：北京"]
    metrics, rows, details = ner_evaluation(_examples(), hyps, TYPES)
    assert metrics == {"precision": 0.5, "recall": 0.6,
                       "f1": pytest.approx(6 / 11, abs=1e-6),
                       "parse_rate": pytest.approx(6 / 7, abs=1e-6)}
    per = details["per_type"]
    assert per["PER"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert per["LOC"] == {"precision": pytest.approx(2 / 3, abs=1e-6), "recall": 1.0,
                          "f1": 0.8, "support": 2}
    assert per["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert details["format_errors"] == 1 and details["unplaced"] == 1
    assert details["gold_entities"] == 5 and details["output_items"] == 7
    assert rows[0]["unplaced"] == [{"type": "ORG", "text": "Acme"}]
    assert rows[0]["format_errors"] == ["blah"]
    assert rows[1]["entities"] == [{"type": "PER", "text": "王芳"}, {"type": "ORG", "text": "北京大学"}]
    assert rows[1]["predicted"] == [{"type": "PER", "text": "王芳"}, {"type": "LOC", "text": "北京"}]


def test_scores_agree_with_seqeval_classification_report_on_bio_input():
    """IOB1 predictions written out in the format, parsed and placed back, score exactly as
    seqeval's own classification_report scores the IOB2 sequences."""
    from seqeval.metrics import classification_report

    tokens = [["Ann", "Lee", "saw", "Bo", "in", "Oslo", "and", "Rome", "."],
              ["EU", "and", "UN", "met", "at", "Acme", "HQ", "today"],
              ["李", "明", "在", "上", "海", "见", "了", "王", "芳"]]
    gold = [["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "O", "B-LOC", "O"],
            ["B-ORG", "O", "B-ORG", "O", "O", "B-LOC", "I-LOC", "O"],
            ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "O", "B-PER", "I-PER"]]
    pred_iob1 = [["I-PER", "O", "O", "I-PER", "O", "I-LOC", "O", "I-ORG", "O"],
                 ["I-ORG", "O", "I-LOC", "O", "O", "I-ORG", "I-ORG", "I-ORG"],
                 ["I-PER", "I-PER", "I-PER", "O", "I-LOC", "O", "O", "I-PER", "I-PER"]]
    pred = [to_iob2(p) for p in pred_iob1]
    examples = [from_tags(f"s{i}", t, g) for i, (t, g) in enumerate(zip(tokens, gold, strict=True))]
    hyps = [render_entities(entity_list(t, p)) for t, p in zip(tokens, pred, strict=True)]
    metrics, _, details = ner_evaluation(examples, hyps, TYPES)
    report = classification_report(gold, pred, output_dict=True, zero_division=0)
    micro = report["micro avg"]
    assert metrics["precision"] == pytest.approx(micro["precision"], abs=1e-6)
    assert metrics["recall"] == pytest.approx(micro["recall"], abs=1e-6)
    assert metrics["f1"] == pytest.approx(micro["f1-score"], abs=1e-6)
    for kind, row in details["per_type"].items():
        assert row["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-6)
        assert row["support"] == report[kind]["support"]
    # and by hand: gold 10 entities, predicted 10, right: Bo, Oslo, EU, 王芳 -> 4
    assert ner_scores(gold, pred)[0] == {"precision": 0.4, "recall": 0.4, "f1": 0.4}


def test_no_entities_anywhere_scores_zero_without_warnings():
    ex = [from_tags("a", ["it", "rained"], ["O", "O"])]
    metrics, _, _ = ner_evaluation(ex, ["none"], TYPES)
    assert metrics == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "parse_rate": 1.0}


# -- data ------------------------------------------------------------------------------
def test_the_three_data_shapes_load_to_tokens_tags_and_a_target(tmp_path):
    conll = tmp_path / "d.conll"
    conll.write_text("-DOCSTART- -X- O\n\nEU NNP I-ORG\nrejects VBZ O\n\n李 B-PER\n明 I-PER\n",
                     encoding="utf-8")
    a, b = load_ner_file(conll)
    assert (a.fields["text"], a.tags, a.target) == ("EU rejects", ("B-ORG", "O"), "ORG: EU")
    assert (b.fields["text"], b.target, b.meta["line"]) == ("李明", "PER: 李明", 6)
    rows = [{"id": "k", "words": ["Tom", "ran"], "ner": ["B-PER", "O"], "domain": "news"},
            {"text": "Tom met Tom in Rome.", "entities": [
                {"type": "PER", "text": "Tom"}, {"label": "PER", "text": "Tom"},
                {"type": "LOC", "start": 15, "end": 19}]}]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    c, d = load_ner_file(jsonl, fields={"tokens": "words", "tags": "ner"})
    assert (c.id, c.fields, c.target) == ("k", {"domain": "news", "text": "Tom ran"}, "PER: Tom")
    assert d.fields["text"] == "Tom met Tom in Rome." and d.id == "d-2"
    assert d.tags == ("B-PER", "O", "B-PER", "O", "B-LOC", "O") and d.target == "PER: Tom; LOC: Rome"


@pytest.mark.parametrize("row,needle", [
    ({"tokens": ["a", "b"], "tags": ["O"]}, "2 tokens but 1 tags"),
    ({"tokens": ["a", "b"], "tags": ["O", "PER"]}, "tag 1 'PER' is not a BIO tag"),
    ({"tokens": ["a b"], "tags": ["O"]}, "token 0 is 'a b': tokens are non-empty strings"),
    ({"tokens": [], "tags": []}, "tokens is an empty list"),
    ({"text": "Tom ran", "entities": [{"type": "PER", "start": 4, "end": 12}]},
     "entity 0 (PER) span 4-12 is outside the text (7 characters)"),
    ({"text": "Tom ran", "entities": [{"type": "PER", "start": 0, "end": 2}]},
     "entity 0 (PER) 'To' at 0-2 does not start and end on token boundaries"),
    ({"text": "Tom ran", "entities": [{"type": "PER", "text": "Ann"}]},
     "entity 0: text 'Ann' does not occur in the text"),
    ({"text": "Tom ran", "entities": [[0, 3, "PER"], [0, 7, "ORG"]]},
     "entity 1 (ORG) 'Tom ran' overlaps another"),
    ({"text": "Tom ran", "entities": [{"text": "Tom"}]}, "entity 0 has no type"),
    ({"text": "Tom ran"}, "a ner row has 'tokens' and 'tags', or 'text' and 'entities'"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, needle):
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"tokens": ["ok"], "tags": ["O"]}) + "\n" + json.dumps(row) + "\n",
                 encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_ner_file(f)
    assert str(err.value).startswith(f"{f}:2: ") and needle in str(err.value)


def test_a_bad_conll_tag_names_its_own_line(tmp_path):
    f = tmp_path / "d.conll"
    f.write_text("Tom B-PER\nran O\n\nAnn B-PER\nsat X-PER\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.conll:5: tag 1 'X-PER' is not a BIO tag"):
        load_ner_file(f)
    f.write_text("Tom B-PER\nran\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.conll:2: one column \('ran'\)"):
        load_ner_file(f)


def test_an_empty_file_or_a_repeated_id_is_refused_by_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl: no examples in file"):
        load_ner_file(f)
    row = {"id": "x", "tokens": ["ok"], "tags": ["O"]}
    f.write_text((json.dumps(row) + "\n") * 2, encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl:2: duplicate id 'x' \(first on line 1\)"):
        load_ner_file(f)


def test_spec_needs_entity_types_and_the_template_can_name_them():
    data = {"task": "ner", "data": {"files": {"test": "x.jsonl"}},
            "prompt": {"template": "Types: {entity_types}\nText: {text}\nEntities: {mask}"}}
    with pytest.raises(ValidationError, match="task ner needs the entity types"):
        ExperimentSpec.model_validate(data)
    with pytest.raises(ValidationError, match="entity type 'A:B'"):
        ExperimentSpec.model_validate({**data, "prompt": {**data["prompt"],
                                                          "entity_types": ["A:B"]}})
    with pytest.raises(ValidationError, match=r"data\.format: conll .* is read for task ner only"):
        ExperimentSpec.model_validate({**data, "task": "generation",
                                       "data": {**data["data"], "format": "conll"}})
    spec = ExperimentSpec.model_validate(
        {**data, "prompt": {**data["prompt"], "entity_types": {"PER": "person", "LOC": ""}}})
    assert spec.metrics == ["precision", "recall", "f1", "parse_rate"]
    assert spec.model_task == "generation"
    ex = from_spans("a", "Tom ran home.", [[0, 3, "PER"]])
    item = PromptBuilder(spec).train_items([ex])[0]
    assert item.target == "PER: Tom"
    assert item.prompt.text() == "Types: PER (person), LOC\nText: Tom ran home.\nEntities: "


# -- CLI -------------------------------------------------------------------------------
def _copy_example(tmp_path, edit_test=None):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("ner-train.conll", "ner-test.jsonl"):
        text = (ROOT / "examples" / "data" / name).read_text(encoding="utf-8")
        if edit_test and name.endswith("jsonl"):
            text = edit_test(text)
        (data / name).write_text(text, encoding="utf-8")
    spec = tmp_path / "ner.yaml"
    spec.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    return spec, data


def test_validate_and_run_name_an_unknown_entity_type_by_line(tmp_path):
    spec, data = _copy_example(tmp_path, lambda t: t.replace('"type": "LOC", "text": "Dublin"',
                                                               '"type": "GPE", "text": "Dublin"'))
    for args in (("validate", str(spec)),
                 ("run", str(spec), "--backend", "fake", "--out", str(tmp_path / "r"))):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert (f"{data / 'ner-test.jsonl'}:2: example 't2': unknown entity type 'GPE'"
                in proc.stderr) and "Traceback" not in proc.stderr
    assert not (tmp_path / "r").exists()


def test_ner_run_on_the_fake_backend_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", str(EXAMPLE), "--backend", "fake", "--set", "backend.model=fake-ner",
                   "--set", "finetune.method=lora", "--set", "finetune.max_steps=4",
                   "--set", "finetune.batch_size=2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "ner" and metrics["n_examples"] == 6
    assert list(metrics["metrics"]) == ["precision", "recall", "f1", "parse_rate"]
    assert metrics["trainable_params"] > 0
    assert {k: v["support"] for k, v in metrics["ner"]["per_type"].items()} == \
        {"LOC": 5, "ORG": 3, "PER": 3}
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert rows[4]["entities"] == [{"type": "PER", "text": "王芳"}, {"type": "ORG", "text": "北京大学"}]
    assert rows[3]["target"] == "ORG: Red Cross; LOC: Haiti"
    from unified_prompt.data.resolve import load_splits

    spec = ExperimentSpec.model_validate(
        {**yaml.safe_load(EXAMPLE.read_text()), "data": {"files": {
            "test": str(ROOT / "examples" / "data" / "ner-test.jsonl")}}})
    examples = load_splits(spec.data, "ner", 13).test
    recomputed, _, details = ner_evaluation(examples, [r["prediction"] for r in rows], TYPES)
    assert metrics["metrics"] == recomputed and metrics["ner"] == details
    assert "| t4 | ORG: Red Cross; LOC: Haiti |" in (out / "report.md").read_text()


def test_training_teaches_the_format(tmp_path):
    """Every training sentence names Paris; after LoRA the fake model (widened to 64 dims to
    hold a three-token answer) answers `per : paris` (its words are lower-case and spaced):
    parsed, placed ignoring case, and scored. e0 is right (PER Paris); on e1 gold is LOC
    Paris, so PER paris is one FP and one FN: TP 1, predicted 2, gold 2 -> P = R = F1 =
    0.5. Untrained, it writes nothing readable. (The fake model spells a word it has seen in
    this process, so the template shows the types and a colon.)"""
    from unified_prompt.runner import Experiment

    rows = [{"id": f"t{i}", "tokens": ["Paris", "said", "hello", str(i)],
             "tags": ["B-PER", "O", "O", "O"]} for i in range(8)]
    tests = [{"id": "e0", "tokens": ["Paris", "said", "hello", "0"],
              "tags": ["B-PER", "O", "O", "O"]},
             {"id": "e1", "text": "I saw Paris", "entities": [[6, 11, "LOC"]]}]
    for name, data in (("train", rows), ("test", tests)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data),
                                                encoding="utf-8")
    spec = {"task": "ner",
            "backend": {"name": "fake", "model": "fake-a", "options": {"fake": {"dim": 64}}},
            "data": {"files": {"train": str(tmp_path / "train.jsonl"),
                               "test": str(tmp_path / "test.jsonl")}},
            "prompt": {"template": "{entity_types}: {text} {mask}", "entity_types": TYPES},
            "eval": {"max_new_tokens": 3}}
    untrained = Experiment.from_dict(spec).run(out=tmp_path / "zs", progress=False)
    assert untrained.metrics["metrics"]["f1"] == 0.0
    assert untrained.metrics["metrics"]["parse_rate"] == 0.0
    lora = {"method": "lora", "lr": 0.1, "max_steps": 100, "batch_size": 4}
    trained = Experiment.from_dict({**spec, "finetune": lora}).run(out=tmp_path / "lora",
                                                                   progress=False)
    assert [r["prediction"] for r in trained.predictions] == ["per : paris"] * 2
    assert trained.metrics["metrics"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5,
                                          "parse_rate": 1.0}
    from unified_prompt.prediction import Predictor

    with Predictor.from_run(tmp_path / "lora") as predictor:
        out = predictor.predict(["Paris said hello 0"])
    assert out == [{"text": "per : paris",
                    "entities": [{"type": "PER", "text": "Paris", "start": 0, "end": 5}]}]


def test_entities_in_new_text_carry_character_offsets():
    assert entities_in("Tom met Tom in Rome.", "PER: tom; LOC: Rome; ORG: X", TYPES) == [
        {"type": "PER", "text": "Tom", "start": 0, "end": 3},
        {"type": "PER", "text": "Tom", "start": 8, "end": 11},
        {"type": "LOC", "text": "Rome", "start": 15, "end": 19}]
    assert entities_in("王芳在北京。", "LOC：北京", TYPES) == [
        {"type": "LOC", "text": "北京", "start": 3, "end": 5}]


def test_search_refuses_ner_specs_clearly(tmp_path):
    proc = run_cli("search", str(EXAMPLE), "--backend", "fake", "--strategy", "propose",
                   "--budget", "5", "--out", str(tmp_path / "s"))
    assert proc.returncode == 2 and "no search strategy takes ner specs yet" in proc.stderr
    assert not (tmp_path / "s").exists()


def test_people_daily_round_trips_through_the_format():
    """Real data: the gold targets of the first 100 test sentences, parsed and placed back,
    score 1.0; `none` everywhere scores 0 (101 gold entities: 57 LOC, 10 ORG, 34 PER)."""
    from unified_prompt.config import DataSpec
    from unified_prompt.data.resolve import load_splits

    test = load_splits(DataSpec(dataset="people_daily_ner"), "ner", 0).test[:100]
    metrics, _, details = ner_evaluation(test, [e.target for e in test], TYPES)
    assert metrics == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "parse_rate": 1.0}
    assert {k: v["support"] for k, v in details["per_type"].items()} == \
        {"LOC": 57, "ORG": 10, "PER": 34}
    assert ner_evaluation(test, ["none"] * 100, TYPES)[0]["f1"] == 0.0
    assert test[0].target == "LOC: 江西; LOC: 上饶; LOC: 三清山"
