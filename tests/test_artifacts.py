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
