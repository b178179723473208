"""A portability test to copy into an app's CI: the app's spec gives the same numbers on
Hugging Face and PaddleNLP, and the adapter it trains converts from one to the other
without changing a prediction.

    pytest examples/test_portability.py        # about a minute per backend on 2 CPU cores

Point SPEC at your spec and keep SETTINGS small enough for CI (eval.limit, max_steps);
`result.assert_agrees()` fails the test with the whole comparison as its message.
"""

from __future__ import annotations

from pathlib import Path

from unified_prompt import portability

SPEC = Path(__file__).with_name("sentiment.yaml")
#: CI-sized: 50 test examples; prompt tuning (text init: the same start on both frameworks)
#: for 6 steps, its dev check on 20 examples.
SETTINGS = ["eval.limit=50", "finetune.method=prompt_tuning", "finetune.num_virtual_tokens=8",
            "finetune.init=text", "finetune.init_text=Is this movie review positive or negative?",
            "finetune.lr=0.003", "finetune.max_steps=6", "finetune.eval_limit=20",
            "finetune.eval_every=6"]
#: Inference must agree closely; training may drift in its last digits over many steps.
TOLERANCE = {"prob": 1e-3, "same": 0.98, "metric": 0.02, "loss": 1e-3, "loss_steps": 6}


def test_the_spec_gives_the_same_numbers_on_hf_and_paddle(tmp_path: Path) -> None:
    result = portability.check(SPEC, backends=["hf", "paddle"], overrides=SETTINGS,
                               tolerance=TOLERANCE, convert=True, out=tmp_path / "matrix")
    print(result.summary())  # shown by pytest -s, or when the test fails
    result.assert_agrees()
    # the converted adapters predict exactly as their originals
    for source, target in (("hf", "paddle"), ("paddle", "hf")):
        pair = result.pair(source, f"{source}-to-{target}")
        assert pair.same == pair.n_common and pair.prob_max < 1e-4
