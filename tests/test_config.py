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
