"""The experiment spec: defaults, overrides, switching backends, errors naming key paths
and lines."""

import pytest

from unified_prompt.config import ExperimentSpec, apply_overrides, load_spec
from unified_prompt.errors import ConfigError

BASE = """\
task: classification
data:
  dataset: rotten_tomatoes
prompt:
  template: "Review: {text} {mask}"
  verbalizer: {positive: good, negative: bad}
"""


def spec_file(tmp_path, text=BASE, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_and_method_specific_defaults(tmp_path):
    spec = load_spec(spec_file(tmp_path))
    assert spec.backend.name == "hf" and spec.finetune.method == "none"
    assert spec.metrics == ["accuracy", "macro_f1"]
    lora = load_spec(spec_file(tmp_path), overrides=["finetune.method=lora", "finetune.r=4"])
    assert lora.finetune.r == 4 and lora.finetune.learning_rate == 5e-4
    pt = load_spec(spec_file(tmp_path), overrides=["finetune.method=prompt_tuning"])
    assert pt.finetune.learning_rate == 3e-2 and pt.finetune.num_virtual_tokens == 20


def test_backend_switch_and_typed_overrides(tmp_path):
    spec = load_spec(spec_file(tmp_path), backend="paddle",
                     overrides=["eval.limit=50", "prompt.verbalizer.positive=[great, fine]",
                                "backend.options.hf.device=cpu"])
    assert spec.backend.name == "paddle" and spec.eval.limit == 50
    assert spec.prompt.verbalizer["positive"] == ["great", "fine"]
    assert spec.backend.options_for("hf") == {"device": "cpu"}


@pytest.mark.parametrize("override,key,message", [
    ("finetune.method=lora", None, None),
    ("finetune.rank=4", "finetune.rank", "unknown key"),
    ("eval.limit=many", "eval.limit", "valid integer"),
    ("eval.split=val", "eval.split", "'train', 'dev' or 'test'"),
    ("finetune.method=magic", "finetune", "magic"),
    ("data.dataset=", "data", "exactly one of data.dataset or data.files"),
])
def test_errors_name_the_key_path(tmp_path, override, key, message):
    overrides = [override] if key is None else ["finetune.method=lora", override]
    if key is None:
        load_spec(spec_file(tmp_path), overrides=overrides)
        return
    if override.startswith(("eval", "data")):
        overrides = [override]
    if override.startswith("data.dataset"):
        overrides = ["data.dataset=null"]
    with pytest.raises(ConfigError) as err:
        load_spec(spec_file(tmp_path), overrides=overrides)
    assert key in [p[0] for p in err.value.problems], err.value.problems
    assert message in str(err.value)


def test_error_names_the_line_of_the_bad_key(tmp_path):
    text = BASE + "finetune:\n  method: lora\n  rank: 4\n"
    with pytest.raises(ConfigError) as err:
        load_spec(spec_file(tmp_path, text))
    assert f"{tmp_path / 'spec.yaml'}:9: finetune.rank: unknown key" in str(err.value)


def test_missing_required_field(tmp_path):
    with pytest.raises(ConfigError, match="prompt: required key is missing"):
        load_spec(spec_file(tmp_path, "data:\n  dataset: rotten_tomatoes\n"))


def test_coherence_rules(tmp_path):
    with pytest.raises(ConfigError, match=r"classification needs a \{mask\} slot"):
        load_spec(spec_file(tmp_path), overrides=["prompt.template=Review: {text}"])
    with pytest.raises(ConfigError, match="only prompt_tuning or p_tuning"):
        load_spec(spec_file(tmp_path), overrides=["prompt.template={soft:4} {text} {mask}"])
    with pytest.raises(ConfigError, match="init: text needs init_text"):
        load_spec(spec_file(tmp_path), overrides=["finetune.method=prompt_tuning",
                                                  "finetune.init=text"])
    with pytest.raises(ConfigError, match="unclosed"):
        load_spec(spec_file(tmp_path), overrides=["prompt.template={text {mask}"])


def test_bad_yaml_and_non_mapping(tmp_path):
    with pytest.raises(ConfigError, match=r"spec.yaml:3: not valid YAML"):
        load_spec(spec_file(tmp_path, "a: 1\nb: [1, 2\nc: 3\n"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec(spec_file(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="no such file"):
        load_spec(tmp_path / "missing.yaml")


def test_override_errors():
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        apply_overrides({}, ["novalue"])
    with pytest.raises(ConfigError, match="eval is not a mapping"):
        apply_overrides({"eval": 3}, ["eval.limit=2"])


def test_data_files_are_relative_to_the_spec(tmp_path):
    (tmp_path / "sub").mkdir()
    text = BASE.replace("  dataset: rotten_tomatoes", "  files: {test: data/t.jsonl}")
    spec = load_spec(spec_file(tmp_path / "sub", text))
    assert spec.data.files.test == tmp_path / "sub" / "data" / "t.jsonl"


def test_round_trip_through_yaml():
    spec = ExperimentSpec.model_validate({
        "data": {"dataset": "rotten_tomatoes"}, "finetune": {"method": "lora", "r": 2},
        "prompt": {"template": "{text} {mask}", "verbalizer": {"a": "x", "b": "y"}}})
    import yaml

    again = ExperimentSpec.model_validate(yaml.safe_load(spec.to_yaml()))
    assert again == spec


# -- hostile and careless specs (issue 12) ---------------------------------------------
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
    for i in range(8))


def test_an_alias_bomb_is_refused_quickly(tmp_path):
    """1 KB of YAML that expands to 10**9 nodes: refused while composing, in milliseconds."""
    import time

    text = BASE + ALIAS_BOMB + "name: *i\n"
    assert len(text) < 1200
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"spec.yaml:\d+: aliases expand this document past"):
        load_spec(spec_file(tmp_path, text))
    assert time.perf_counter() - started < 2
    shared = BASE + "backend:\n  options: {hf: &o {device: cpu}, paddle: *o}\n"
    assert load_spec(spec_file(tmp_path, shared)).backend.options["paddle"] == {"device": "cpu"}


@pytest.mark.parametrize("text,needle", [
    (BASE + "task: generation\n", r"spec.yaml:7: duplicate key 'task' \(first given on line 1\)"),
    (BASE.replace("  dataset: rotten_tomatoes", "  dataset: rotten_tomatoes\n  dataset: x"),
     r"spec.yaml:4: duplicate key 'dataset'"),
    (BASE.replace("{positive: good, negative: bad}", "{positive: good, positive: bad}"),
     r"spec.yaml:6: duplicate key 'positive'"),
    ("a: " + "[" * 3000 + "]" * 3000 + "\n", r"nested more than 100 levels deep"),
])
def test_duplicate_keys_and_deep_nesting_are_errors(tmp_path, text, needle):
    with pytest.raises(ConfigError, match=needle):
        load_spec(spec_file(tmp_path, text))


def test_merge_keys_still_override_on_purpose(tmp_path):
    text = BASE + "x_defaults: &d {name: fake, model: m1}\n"
    text = text.replace("x_defaults", "backend").replace("backend: &d {name: fake, model: m1}",
                                                         "backend:\n  <<: {name: fake, model: m1}\n"
                                                         "  model: m2")
    assert load_spec(spec_file(tmp_path, text)).backend.model == "m2"


def test_non_utf8_spec_names_the_line(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(BASE.replace("Review", "R\xe9view").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"spec.yaml:5: not UTF-8 text"):
        load_spec(path)
    path.write_bytes(b"\xef\xbb\xbf" + BASE.encode())  # a BOM is fine
    assert load_spec(path).task == "classification"


@pytest.mark.parametrize("override,key", [
    ("finetune.lr=.inf", "finetune.lr"), ("finetune.lr=.nan", "finetune.lr"),
    ("finetune.epochs=.inf", "finetune.epochs"),
    ("data.split={train: .nan, dev: .nan, test: .nan}", "data.split.train"),
    ("seed=100000000000000000000000000", "seed"), ("seed=-1", "seed"),
    ("finetune.seed=4294967296", "finetune.seed"), ("finetune.r=100000000000000000000", "finetune.r"),
    ("eval.max_new_tokens=10000000", "eval.max_new_tokens"), ("eval.tokenize=klingon", "eval.tokenize"),
])
def test_non_finite_and_out_of_range_numbers_are_refused(tmp_path, override, key):
    extra = ["finetune.method=lora"] if override.startswith("finetune") else []
    with pytest.raises(ConfigError) as info:
        load_spec(spec_file(tmp_path), overrides=[*extra, override])
    assert key in {k for k, _ in info.value.problems}, info.value.problems


def test_set_values_go_through_the_same_loader(tmp_path):
    with pytest.raises(ConfigError, match=r"--set prompt.verbalizer: duplicate key 'positive'"):
        load_spec(spec_file(tmp_path),
                  overrides=["prompt.verbalizer={positive: good, positive: fine, negative: bad}"])
    bomb = "[" + ",".join(["&a [x,x,x,x,x,x,x,x,x,x]"] + ["*a"] * 9) + "]"
    nested = bomb
    for _ in range(4):
        nested = "[" + ",".join([f"&n{_} " + nested] + [f"*n{_}"] * 9) + "]"
    with pytest.raises(ConfigError, match="aliases expand"):
        load_spec(spec_file(tmp_path), overrides=[f"name={nested}"])
