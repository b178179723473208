"""Secrets are redacted by key name; counts that merely mention tokens are kept."""

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
