"""task: qa: SQuAD exact match / token F1 (English and Chinese, several gold answers), the
answers column in data files and its errors, and a run end to end on the fake backend."""

import json

import pytest

from tests.conftest import ROOT, run_cli
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.loaders import load_file
from unified_prompt.errors import ConfigError, DataError
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.qa_metrics import answer_tokens, qa_metrics

EXAMPLE = ROOT / "examples" / "qa.yaml"


# -- metrics ---------------------------------------------------------------------------
def test_squad_normalisation_drops_case_punctuation_articles_and_spaces():
    assert answer_tokens("  The  Eiffel-Tower, in PARIS! ") == ["eiffeltower", "in", "paris"]
    assert answer_tokens("an apple a day") == ["apple", "day"]
    assert answer_tokens("位于北京市。Beijing 2008年", by_char=True) == \
        ["位", "于", "北", "京", "市", "beijing", "2008", "年"]


def test_english_exact_match_and_f1_take_the_best_gold_answer():
    golds = [["Paris", "the city of Paris"], ["1889"], ["Johannes Gutenberg", "Gutenberg"]]
    preds = ["in Paris, France", "The 1889.", "Gutenberg's press"]
    # 1: vs "paris" P=1/3 R=1 -> 0.5; vs "city of paris" P=R=1/3 -> 1/3; best 0.5, no EM
    # 2: "the 1889." normalises to "1889": EM 1, F1 1
    # 3: "gutenbergs press" shares no token with either answer: 0
    out = qa_metrics(golds, preds)
    assert out == {"exact_match": pytest.approx(1 / 3, abs=1e-6),
                   "f1": pytest.approx((0.5 + 1 + 0) / 3, abs=1e-6)}


def test_chinese_is_scored_per_character():
    golds = [["北京市", "北京"], ["陆羽"], ["第二长河", "第二"]]
    preds = ["在北京", "陆 羽。", "第三"]
    # 1: vs 北京 P=2/3 R=1 -> 0.8 (vs 北京市 P=R=2/3 -> 2/3); no EM
    # 2: spaces and 。 go: EM 1
    # 3: vs 第二 P=R=1/2 -> 0.5; vs 第二长河 P=1/2 R=1/4 -> 1/3
    out = qa_metrics(golds, preds)
    assert out["exact_match"] == pytest.approx(1 / 3, abs=1e-6)
    assert out["f1"] == pytest.approx((0.8 + 1 + 0.5) / 3, abs=1e-6)
    # without per-character tokens each answer is one word, and none is matched whole
    assert qa_metrics(golds, preds, tokenize="13a") == {"exact_match": 0.0, "f1": 0.0}


def test_empty_answers_and_unknown_metric():
    assert qa_metrics([["."], ["yes"]], ["", ""]) == {"exact_match": 0.5, "f1": 0.5}
    with pytest.raises(ConfigError, match="'bleu' is not a qa metric"):
        qa_metrics([["a"]], ["a"], ("bleu",))


def test_qa_defaults_to_exact_match_and_f1_and_trains_the_first_answer(tmp_path):
    spec = ExperimentSpec.model_validate({
        "task": "qa", "data": {"files": {"test": "x.jsonl"}},
        "prompt": {"template": "Context: {context}\nQuestion: {question}\nAnswer: {mask}"}})
    assert spec.metrics == ["exact_match", "f1"] and spec.model_task == "generation"
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"id": "q1", "context": "c", "question": "q", "answers": ["A1", "A2"]})
                 + "\n" + json.dumps({"context": "c", "question": "q",
                                      "answers": {"text": ["S"], "answer_start": [0]}}) + "\n"
                 + json.dumps({"context": "c", "question": "q", "answers": 7}) + "\n",
                 encoding="utf-8")
    ex = load_file(f, task="qa", require=("answers",))
    assert [e.answers for e in ex] == [("A1", "A2"), ("S",), ("7",)]
    assert [e.target for e in ex] == ["A1", "S", "7"] and "answers" not in ex[0].fields
    items = PromptBuilder(spec).train_items(ex)
    assert [i.target for i in items] == ["A1", "S", "7"]
    assert items[0].prompt.text().endswith("Answer: ")


@pytest.mark.parametrize("answers,needle", [
    (None, "missing 'answers'"),
    ([], "answers 'answers' is an empty list"),
    (["ok", 3.5, ["x"]], "answers 'answers': item 2 is a list, not an answer"),
    (["ok", " "], "answers 'answers': item 1 is empty, not an answer"),
    ({"start": 1}, "answers 'answers' must be a string or a list of strings, not an object"),
])
def test_bad_answers_name_file_and_line(tmp_path, answers, needle):
    f = tmp_path / "d.jsonl"
    rows = [{"context": "c", "question": "q", "answers": ["fine"]},
            {"context": "c", "question": "q", **({} if answers is None else {"answers": answers})}]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_file(f, task="qa", require=("answers",))
    assert str(err.value).startswith(f"{f}:2: ") and needle in str(err.value)


# -- CLI -------------------------------------------------------------------------------
def test_validate_names_the_bad_qa_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train", "test"):
        lines = (ROOT / "examples" / "data" / f"qa-{name}.jsonl").read_text(encoding="utf-8")
        (data / f"qa-{name}.jsonl").write_text(lines, encoding="utf-8")
    rows = (data / "qa-test.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(rows[2])
    bad["answers"] = [None]
    rows[2] = json.dumps(bad)
    (data / "qa-test.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = tmp_path / "qa.yaml"
    spec.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    proc = run_cli("validate", str(spec))
    assert proc.returncode == 2
    assert f"{data / 'qa-test.jsonl'}:3: answers 'answers': item 0 is null" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_qa_run_on_the_fake_backend_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("run", str(EXAMPLE), "--backend", "fake", "--set", "backend.model=fake-qa",
                   "--set", "finetune.method=lora", "--set", "finetune.max_steps=4",
                   "--set", "finetune.batch_size=2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["task"] == "qa" and metrics["n_examples"] == 6
    assert set(metrics["metrics"]) == {"exact_match", "f1"}
    assert metrics["trainable_params"] > 0
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert rows[0]["answers"] == ["100 degrees Celsius", "100 °C"]
    assert rows[4]["answers"] == ["北京"]
    recomputed = qa_metrics([r["answers"] for r in rows], [r["prediction"] for r in rows])
    assert metrics["metrics"] == recomputed
    assert "| test-0 | 100 degrees Celsius; 100 °C |" in (out / "report.md").read_text()


def test_training_teaches_the_first_answer(tmp_path):
    """Every training example's first answer is "Paris" (the second "london"): after LoRA the
    fake model answers "paris", scored EM 1 / F1 1 on the first question and, against "city of
    paris", EM 0 / F1 0.5 (P=1, R=1/3) on the second; untrained, it answers neither."""
    from unified_prompt.runner import Experiment

    rows = [{"id": f"t{i}", "context": f"story number {i} about a city",
             "question": "which city?", "answers": ["Paris", "london"]} for i in range(8)]
    tests = [{"id": "e0", "context": "story number 0 about a city", "question": "which city?",
              "answers": ["paris"]},
             {"id": "e1", "context": "story number 1 about a city", "question": "which city?",
              "answers": ["Rome", "city of paris"]}]
    for name, data in (("train", rows), ("test", tests)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data),
                                                encoding="utf-8")
    spec = {"task": "qa", "backend": {"name": "fake", "model": "fake-qa"},
            "data": {"files": {"train": str(tmp_path / "train.jsonl"),
                               "test": str(tmp_path / "test.jsonl")}},
            "prompt": {"template": "Context: {context} Question: {question} Answer: {mask}"},
            "eval": {"max_new_tokens": 1}}
    untrained = Experiment.from_dict(spec).run(out=tmp_path / "zs", progress=False)
    assert untrained.metrics["metrics"] == {"exact_match": 0.0, "f1": 0.0}
    lora = {"method": "lora", "lr": 0.1, "max_steps": 100, "batch_size": 4}
    trained = Experiment.from_dict({**spec, "finetune": lora}).run(out=tmp_path / "lora",
                                                                   progress=False)
    assert trained.metrics["metrics"] == {"exact_match": 0.5, "f1": 0.75}
    preds = [json.loads(x)["prediction"]
             for x in (tmp_path / "lora" / "predictions.jsonl").read_text().splitlines()]
    assert preds == ["paris", "paris"]


def test_search_takes_qa_specs_and_judges_by_f1(tmp_path):
    """(Known-answer qa searches: tests/search/test_search_qa.py.)"""
    proc = run_cli("search", str(EXAMPLE), "--backend", "fake", "--set", "backend.model=fake-qa",
                   "--strategy", "demos", "--budget", "40", "-o", "random_sets=1", "-o",
                   "steps=1", "--out", str(tmp_path / "s"))
    assert proc.returncode == 0, proc.stderr
    assert "dev f1:" in proc.stdout and "test f1: original" in proc.stdout
    assert "# dev f1" in (tmp_path / "s" / "best.yaml").read_text()
    proc = run_cli("search", str(EXAMPLE), "--backend", "fake", "--set", "backend.model=fake-qa",
                   "--strategy", "verbalizer", "--budget", "5")
    assert proc.returncode == 2 and "this spec's task is 'qa'" in proc.stderr
