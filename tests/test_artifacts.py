"""Secrets are redacted by key name; counts that merely mention tokens are kept. What we
write is strict JSON; manifests and checkpoints from elsewhere fail with clear errors."""

import pytest

from unified_prompt.artifacts import REDACTED, redact_secrets


def test_secret_keys_are_redacted_and_token_counts_kept():
    data = {"backend": {"options": {"openai": {"api_key": "sk-1", "organization": "org-2",
                                               "base_url": "http://x", "auth_token": "t",
                                               "token": "t2", "Authorization": "Bearer z"}}},
            "eval": {"max_new_tokens": 24, "max_tokens": 3},
            "budget": {"max_tokens": 1000}, "secrets": ["a"], "password": ""}
    out = redact_secrets(data)
    opts = out["backend"]["options"]["openai"]
    assert opts["api_key"] == opts["organization"] == opts["auth_token"] == REDACTED
    assert opts["token"] == opts["Authorization"] == REDACTED and opts["base_url"] == "http://x"
    assert out["eval"] == {"max_new_tokens": 24, "max_tokens": 3}
    assert out["budget"] == {"max_tokens": 1000}
    assert out["secrets"] == REDACTED and out["password"] == ""


def test_spec_files_redact_backend_options_and_keep_label_names():
    import yaml

    from unified_prompt.artifacts import drop_redacted, spec_data, spec_yaml
    from unified_prompt.config import build_spec

    spec = build_spec({"backend": {"name": "fake", "model": "m",
                                   "options": {"openai": {"api_key": "sk-1", "timeout": 5}}},
                       "data": {"dataset": "toy", "label_map": {"token": "secret"}},
                       "prompt": {"template": "{text} {mask}",
                                  "verbalizer": {"secret": "no", "token": "yes"}}})
    data = spec_data(spec)
    assert data["backend"]["options"]["openai"] == {"api_key": REDACTED, "timeout": 5}
    assert data["prompt"]["verbalizer"] == {"secret": "no", "token": "yes"}
    assert data["data"]["label_map"] == {"token": "secret"}
    again = build_spec(drop_redacted(yaml.safe_load(spec_yaml(spec))))
    assert again.prompt == spec.prompt and again.data == spec.data
    assert again.backend.options == {"openai": {"timeout": 5}}


# -- run directories and adapter folders from someone else (issue 12) -------------------
def test_written_json_stays_strict_when_numbers_diverge(tmp_path):
    import json as _json

    from unified_prompt.artifacts import RunDir, atomic_write_json

    run = RunDir(tmp_path)
    run.log_event("step", loss=float("nan"), grad_norm=float("inf"), lr=1e-3)
    atomic_write_json(tmp_path / "m.json", {"metrics": {"loss": float("-inf")}})

    def refuse(name):
        raise ValueError(name)

    event = _json.loads((tmp_path / "events.jsonl").read_text(), parse_constant=refuse)
    assert event["loss"] is None and event["grad_norm"] is None and event["lr"] == 1e-3
    assert _json.loads((tmp_path / "m.json").read_text(), parse_constant=refuse)["metrics"] == {
        "loss": None}


@pytest.mark.parametrize("text,needle", [
    ("{oops", r"manifest.json:1: not valid JSON"), ("[1, 2]", "expected a JSON object, got list"),
    (b"\xe9", "not UTF-8 text"), ('{"version": "1"}', "version must be int, not str"),
    ('{"base_model": "x"}', "base_model must be dict, not str"),
    ('{"base_model": {"checksum": 7}}', "base_model.checksum must be str, not int"),
    ('{"trainable_params": "many"}', "trainable_params must be int, not str"),
    ('{"method_config": {"method": "lora", "r": -3}}', "method_config is not a valid finetune"),
])
def test_a_malformed_manifest_is_a_clear_error(tmp_path, text, needle):
    import json as _json

    from unified_prompt.adapters import spec_for_adapter, write_manifest
    from unified_prompt.config import build_spec
    from unified_prompt.errors import UserInputError

    folder = tmp_path / "a"
    write_manifest(folder, method="lora", method_config={"method": "lora"})
    if isinstance(text, bytes) or not text.startswith("{\""):
        raw = text if isinstance(text, bytes) else text.encode()
    else:
        good = _json.loads((folder / "manifest.json").read_text())
        raw = _json.dumps({**good, **_json.loads(text)}).encode()
    (folder / "manifest.json").write_bytes(raw)
    spec = build_spec({"data": {"dataset": "rotten_tomatoes"},
                       "prompt": {"template": "{text} {mask}",
                                  "verbalizer": {"positive": "good", "negative": "bad"}},
                       "eval": {"adapter": str(folder)}})
    with pytest.raises(UserInputError, match=needle):
        spec_for_adapter(spec)


def test_a_damaged_checkpoint_is_named_on_resume(tmp_path, toy_spec):
    from tests.conftest import run_cli

    out = tmp_path / "run"
    assert run_cli("run", str(toy_spec), "--out", str(out)).returncode == 0
    for done in ("metrics.json", "state.json"):
        (out / done).unlink()
    latest = out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()
    cases = [(latest / "session" / "session.npz", b"PK\x03\x04junk", "damaged or not an .npz"),
             (latest / "trainer.json", b'{"stepz": 1}', "not a trainer state"),
             (out / "checkpoints" / "latest", b"../../..\n", "not a step-N checkpoint")]
    for path, content, needle in cases:
        saved = path.read_bytes()
        path.write_bytes(content)
        proc = run_cli("run", str(toy_spec), "--out", str(out), "--resume")
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        path.write_bytes(saved)
    assert run_cli("run", str(toy_spec), "--out", str(out), "--resume").returncode == 0
