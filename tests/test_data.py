"""Loaders (errors name file and line), bundled datasets, split and k-shot determinism."""

import collections
import json

import pytest

from unified_prompt.config import DataFiles, DataSpec
from unified_prompt.data.bundled import dataset_info, dataset_names, load_dataset
from unified_prompt.data.example import Example
from unified_prompt.data.loaders import load_file
from unified_prompt.data.resolve import load_splits
from unified_prompt.data.splits import k_shot, split_examples
from unified_prompt.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_with_field_mapping_and_label_map(tmp_path):
    f = write(tmp_path / "d.jsonl",
              '{"review": "good", "stars": 5, "id": "a"}\n\n{"review": "bad", "stars": 1}\n')
    ex = load_file(f, fields={"text": "review", "label": "stars"},
                   label_map={"5": "positive", "1": "negative"})
    assert ex[0] == Example("a", {"text": "good"}, label="positive")
    assert ex[1].id == "d-3" and ex[1].label == "negative"


def test_broken_jsonl_line_names_file_and_line(tmp_path):
    f = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", label}\n')
    with pytest.raises(DataError) as err:
        load_file(f)
    assert err.value.line == 2 and err.value.path == str(f)
    assert str(err.value).startswith(f"{f}:2: not valid JSON")


def test_missing_required_field_names_line_and_column(tmp_path):
    f = write(tmp_path / "d.csv", "sentence,label\nfine,pos\n,neg\n")
    with pytest.raises(DataError, match=r"d.csv:3: missing 'text' \(column 'sentence'\)"):
        load_file(f, fields={"text": "sentence"}, require=("text", "label"))


def test_csv_and_tsv_with_extra_columns_passing_through(tmp_path):
    f = write(tmp_path / "d.tsv", "text\tlabel\ttopic\nhi there\tgreet\tsmall talk\n")
    (ex,) = load_file(f)
    assert ex.fields == {"text": "hi there", "topic": "small talk"} and ex.label == "greet"
    bad = write(tmp_path / "bad.csv", "text,label\na,b,c\n")
    with pytest.raises(DataError, match=r"bad.csv:2: 3 columns, the header has 2"):
        load_file(bad)


def test_unknown_label_in_label_map_and_duplicate_ids(tmp_path):
    f = write(tmp_path / "d.jsonl", '{"text": "a", "label": 3}\n')
    with pytest.raises(DataError, match=r"d.jsonl:1: label '3' is not in data.label_map"):
        load_file(f, label_map={"1": "x"})
    f = write(tmp_path / "e.jsonl", '{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n')
    with pytest.raises(DataError, match=r"e.jsonl:2: duplicate id '1' \(first on line 1\)"):
        load_file(f)


def test_format_detection_and_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"set data\.format"):
        load_file(write(tmp_path / "d.txt", "x"))
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "none.jsonl")


def test_split_is_stratified_deterministic_and_disjoint():
    ex = [Example(f"e{i}", {"text": str(i)}, label="a" if i % 4 else "b") for i in range(400)]
    one = split_examples(ex, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=0)
    two = split_examples(ex, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=0)
    assert one == two
    assert {k: len(v) for k, v in one.items()} == {"train": 320, "dev": 40, "test": 40}
    assert collections.Counter(e.label for e in one["test"]) == {"a": 30, "b": 10}
    ids = [e.id for split in one.values() for e in split]
    assert len(ids) == len(set(ids)) == 400
    other = split_examples(ex, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=1)
    assert [e.id for e in other["test"]] != [e.id for e in one["test"]]


def test_k_shot_is_k_per_label_and_reproducible():
    ex = [Example(f"e{i}", {"text": str(i)}, label="abc"[i % 3]) for i in range(90)]
    a, b = k_shot(ex, 4, seed=3), k_shot(ex, 4, seed=3)
    assert a == b and collections.Counter(e.label for e in a) == {"a": 4, "b": 4, "c": 4}
    assert k_shot(ex, 4, seed=4) != a


def test_bundled_datasets_have_documented_sizes():
    sizes = {name: load_splits(DataSpec(dataset=name), dataset_info(name).task, 0).sizes()
             for name in dataset_names()}
    assert sizes == {
        "rotten_tomatoes": {"train": 10201, "dev": 1276, "test": 1275},
        "bbc_headlines": {"train": 1671, "dev": 209, "test": 209},
        "chinese_reviews": {"train": 13889, "dev": 1736, "test": 1736},
        "people_daily_ner": {"train": 8000, "dev": 1000, "test": 1000},
        "fanout_qa": {"train": 1347, "dev": 169, "test": 168},
    }
    rt = load_dataset("rotten_tomatoes")
    assert {e.label for e in rt} == {"positive", "negative"}
    assert len({e.text for e in rt}) == len(rt), "duplicates are dropped"
    fanout = load_dataset("fanout_qa")
    assert len(fanout) == 1684 and len({e.fields["question"] for e in fanout}) == 1684
    assert fanout[0].fields == {"question": "What is the batting hand of Pat Burrell?"}
    assert fanout[0].answers == ("Right",) and fanout[0].target == "Right"
    bbc = load_dataset("bbc_headlines")[0]
    assert bbc.target and len(bbc.text) > len(bbc.target)


def test_experiment_seed_does_not_move_the_test_split():
    a = load_splits(DataSpec(dataset="rotten_tomatoes"), "classification", seed=1)
    b = load_splits(DataSpec(dataset="rotten_tomatoes", k_shot=8), "classification", seed=2)
    assert [e.id for e in a.test] == [e.id for e in b.test]
    assert len(b.train) == 16


def test_files_only_train_are_split_and_limits_apply(tmp_path):
    rows = [{"text": f"t{i}", "label": "xy"[i % 2]} for i in range(100)]
    f = write(tmp_path / "train.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    spec = DataSpec(files=DataFiles(train=f), limit={"test": 5})
    s = load_splits(spec, "classification", 0)
    assert s.sizes() == {"train": 80, "dev": 10, "test": 5}


def test_dataset_task_mismatch_is_an_error():
    with pytest.raises(DataError, match="generation dataset"):
        load_splits(DataSpec(dataset="bbc_headlines"), "classification", 0)


# -- validate and run make the same data checks (issue 12) -----------------------------
def _toy_rows():
    return [{"id": f"r{i}", "text": f"film {i}", "label": "positive" if i % 2 else "negative"}
            for i in range(8)]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _mutated(case, data):
    """Write train/test files with one problem; returns (spec extra, expected message)."""
    rows = _toy_rows()
    train = data / "train.jsonl"
    extra = ""
    if case == "text-missing":
        del rows[6]["text"]
        needle = "train.jsonl:7: example 'r6': no field 'text'"
    elif case in ("text-null", "text-list", "text-object", "text-bool"):
        rows[6]["text"] = {"text-null": None, "text-list": ["a"], "text-object": {"a": 1},
                           "text-bool": True}[case]
        needle = "train.jsonl:7: example 'r6': field 'text' is "
    elif case == "label-not-in-verbalizer":
        rows[3]["label"] = "neutral"
        needle = "train.jsonl:4: label(s) 'neutral' have no words in prompt.verbalizer"
    elif case == "verbalizer-label-not-in-data":
        extra = "    neutral: [meh]\n"
        needle = "prompt.verbalizer: label(s) 'neutral' occur in no split of the data"
    elif case == "label-a-list":
        rows[2]["label"] = ["positive"]
        needle = "train.jsonl:3: label 'label' must be text or a number, not a list"
    elif case == "nan-literal":
        train.write_text("".join(json.dumps(r) + "\n" for r in rows)
                         + '{"id": "n", "text": NaN, "label": "positive"}\n', encoding="utf-8")
        return extra, "train.jsonl:9: not valid JSON (NaN is not JSON)"
    _write_jsonl(train, rows)
    return extra, needle


@pytest.mark.parametrize("case", ["text-missing", "text-null", "text-list", "text-object",
                                  "text-bool", "label-not-in-verbalizer",
                                  "verbalizer-label-not-in-data", "label-a-list", "nan-literal"])
def test_validate_and_run_refuse_the_same_data_naming_file_and_line(tmp_path, case):
    from unified_prompt.errors import UserInputError
    from unified_prompt.runner import Experiment
    from unified_prompt.validation import validate_spec_file

    data = tmp_path / "data"
    data.mkdir()
    _write_jsonl(data / "test.jsonl", _toy_rows())
    extra, needle = _mutated(case, data)
    spec = tmp_path / "s.yaml"
    spec.write_text(f"""\
backend: {{name: fake, model: fake-toy}}
data: {{files: {{train: {data}/train.jsonl, test: {data}/test.jsonl}}}}
prompt:
  template: "Review: {{text}} Sentiment: {{mask}}"
  verbalizer:
    positive: [good]
    negative: [bad]
{extra}""", encoding="utf-8")
    with pytest.raises(UserInputError) as validated:
        validate_spec_file(spec)
    with pytest.raises(UserInputError) as ran:
        Experiment.from_yaml(spec).run(out=tmp_path / "run", progress=False)
    assert needle in str(validated.value)
    assert str(ran.value) == str(validated.value)
    assert not (tmp_path / "run").exists(), "nothing written before the check"


def test_csv_bom_non_utf8_and_missing_mapped_columns(tmp_path):
    rows = "id,review,label\n" + "".join(f"c{i},nice {i},positive\n" for i in range(4))
    path = tmp_path / "a.csv"
    path.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    examples = load_file(path, fields={"text": "review"})
    assert examples[0].id == "c0" and examples[0].fields["text"] == "nice 0"
    with pytest.raises(DataError, match=r"a.csv:1: data.fields.text: no column 'body'"):
        load_file(path, fields={"text": "body"})
    path.write_bytes(rows.replace("nice 2", "caf\xe9").encode("latin-1"))
    with pytest.raises(DataError, match=r"a.csv:4: not UTF-8 text"):
        load_file(path)
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + b'{"id": "x", "text": "t", "label": "l"}\n')
    assert load_file(jsonl)[0].id == "x"
    jsonl.write_text('{"id": "x", "label": "l"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"a.jsonl:1: no 'body' \(data.fields.text\)"):
        load_file(jsonl, fields={"text": "body"})
