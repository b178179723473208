"""task: ner through the OpenAI-compatible API: the same generations, and so the same
entity-level scores, as the fake backend gives directly."""

from __future__ import annotations

import openai_testkit as kit

from tests.conftest import ROOT
from unified_prompt.runner import Experiment


def test_ner_through_the_server_equals_the_fake_backend(server, tmp_path):
    overrides = ["backend.model=fake-tiny", "prompt.demonstrations.k=1"]
    direct = Experiment.from_yaml(ROOT / "examples" / "ner.yaml", overrides=overrides,
                                  backend="fake").run(out=tmp_path / "fake", progress=False)
    opts = [f"backend.options.openai.{k}={v}"
            for k, v in kit.backend_options(server).items() if k != "retry"]
    hosted = Experiment.from_yaml(ROOT / "examples" / "ner.yaml", overrides=overrides + opts,
                                  backend="openai").run(out=tmp_path / "openai", progress=False)
    assert [r["prediction"] for r in hosted.predictions] == \
        [r["prediction"] for r in direct.predictions]
    assert len({r["prediction"] for r in direct.predictions}) > 1, "a non-trivial check"
    assert hosted.scores == direct.scores and hosted.metrics["ner"] == direct.metrics["ner"]
    assert hosted.metrics["backend"] == "openai" and hosted.metrics["task"] == "ner"
