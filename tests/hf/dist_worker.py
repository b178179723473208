"""One rank of the hf data-parallel checks (run by torchrun), or the one-process reference.

    torchrun --standalone --nproc_per_node 2 tests/hf/dist_worker.py OUT.json

Trains LoRA and prompt tuning (10 steps) and FSDP full fine-tuning (5 steps) on the tiny
Llama through the core's Trainer, then scores a few prompts through the sharded evaluator;
rank 0 writes per-step losses, final label scores and predictions as JSON. The FSDP case
also checkpoints every 2 steps, resumes a fresh session from the step-4 checkpoint to the
end, and saves the model, which rank 0 reloads unsharded and scores.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hf_helpers import make_builder, make_setup

from unified_prompt.distributed import ShardedInference, World, open_world
from unified_prompt.registry import create_backend
from unified_prompt.testing.conformance import synthetic_examples
from unified_prompt.testing.tiny import tiny_model
from unified_prompt.training import Trainer

CASES: dict[str, dict[str, Any]] = {
    "lora": {"method": "lora", "r": 4, "alpha": 8, "lr": 0.01, "max_steps": 10},
    "prompt_tuning": {"method": "prompt_tuning", "num_virtual_tokens": 4, "lr": 0.05,
                      "init": "random", "max_steps": 10,
                      "template": "{soft} Review: {text}\nSentiment: {mask}"},
    "fsdp_full": {"method": "full", "lr": 0.001, "max_steps": 5, "parallel": "fsdp"},
}


def run_case(backend: Any, model: Any, world: World, name: str,
             work: Path | None = None) -> dict[str, Any]:
    settings = dict(CASES[name])
    method = settings.pop("method")
    template = settings.pop("template", None)
    extra = {"template": template} if template else {}
    checkpoints = work / f"{name}-checkpoints" if work and name == "fsdp_full" else None
    if checkpoints is not None:
        settings["checkpoint_every"] = 2
    builder = make_builder(method, batch_size=8, warmup_ratio=0.0, **extra, **settings)
    setup = dataclasses.replace(make_setup(builder), world=world)
    session = backend.start_training(model, setup)
    log: list[tuple[str, dict]] = []
    examples = synthetic_examples()
    items = builder.train_items(examples)
    trainer = Trainer(session, items, setup.method, seed=3, progress=False, world=world,
                      log=lambda k, **d: log.append((k, d)), checkpoint_dir=checkpoints)
    trainer.run()
    session.train_mode(False)
    inference = ShardedInference(backend, world)
    prompts, words = builder.render(examples), builder.verbalizer.flat_words
    labels = builder.verbalizer.label_scores(inference.score(session.model, prompts, words))
    state = session.trainable_state()
    out = {"losses": [d["loss"] for k, d in log if k == "step"],
           "grad_norms": [d["grad_norm"] for k, d in log if k == "step"],
           "label_scores": labels.tolist(), "predictions": labels.argmax(1).tolist(),
           "state_norm": norm(state)}
    if checkpoints is not None:
        assert work is not None
        adapter = work / f"{name}-adapter"
        session.save_adapter(adapter)  # every rank: the weights are gathered for rank 0
        session.close()
        again = backend.start_training(model, setup)
        rlog: list[tuple[str, dict]] = []
        resumed = Trainer(again, items, setup.method, seed=3, progress=False, world=world,
                          checkpoint_dir=checkpoints, log=lambda k, **d: rlog.append((k, d)))
        resumed.run(resume=True)
        out["resumed_from"] = [d["step"] for k, d in rlog if k == "resume"]
        out["resumed_state_norm"] = norm(again.trainable_state())
        out["resumed_max_diff"] = max(float(abs(v - state[k]).max())
                                      for k, v in again.trainable_state().items())
        again.close()
        world.barrier()
        if world.is_main:  # the saved model, unsharded, in this process alone
            reloaded = backend.load_adapter(model, adapter)
            scores = backend.score(reloaded, prompts, words)
            out["adapter_label_scores"] = builder.verbalizer.label_scores(scores).tolist()
        world.barrier()
    else:
        session.close()
    return out


def norm(state: dict[str, Any]) -> float:
    return float(sum(float((v.astype("float64") ** 2).sum()) for v in state.values()))


def main(out: str, names: list[str]) -> None:
    backend = create_backend("hf", {"device": "cpu"})
    world = open_world(backend)
    model = backend.load_model(str(tiny_model("llama")))
    work = Path(out).parent
    results = {name: run_case(backend, model, world, name, work) for name in names}
    if world.is_main:
        Path(out).write_text(json.dumps({"processes": world.size, **results}))
    world.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or list(CASES))
