"""CPU training step time of the hf backend against a plain peft + torch loop.

Both sides train the same method on the same model, batches and optimizer (AdamW, clip 1.0)
in one process, interleaved step by step so other load on the machine hits both alike. The
plain loop is what a user writes with peft: tokenizer(padding left) -> PeftModel forward ->
log-softmax at the last position -> cross-entropy over the two label words -> backward ->
clip -> AdamW -> zero_grad. It is run twice: as usually written (full logits) and with
`logits_to_keep=1` (the fastest plain variant); the ratio reported is against the faster.

    .venv/bin/python bench/hf_train_step.py --method prompt_tuning [--steps 6] [--batch 8]
    .venv/bin/python bench/hf_train_step.py --method lora
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the backend does; before torch loads

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["prompt_tuning", "lora"], default="prompt_tuning")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per side")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM

    from unified_prompt.backend import TrainSetup
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.data.bundled import load_dataset
    from unified_prompt.prompts.builder import PromptBuilder
    from unified_prompt.registry import create_backend

    method = {"prompt_tuning": {"num_virtual_tokens": 20, "init": "random"},
              "lora": {"r": 8, "alpha": 16}}[args.method]
    spec = ExperimentSpec.model_validate({
        "backend": {"name": "hf", "model": args.model}, "data": {"dataset": "rotten_tomatoes"},
        "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                   "verbalizer": {"positive": "positive", "negative": "negative"}},
        "finetune": {"method": args.method, **method}})
    builder = PromptBuilder(spec)
    v = builder.verbalizer
    examples = load_dataset("rotten_tomatoes")[: args.batch * (args.steps + 1)]
    items = builder.train_items(examples)
    batches = [items[i:i + args.batch] for i in range(0, len(items), args.batch)]

    backend = create_backend("hf", {"device": "cpu"})
    model = backend.load_model(args.model)
    setup = TrainSetup(method=spec.finetune, task="classification", seed=0,
                       words=v.flat_words, word_label=v.word_label, n_labels=2,
                       soft_slots=builder.template.soft_slots)
    session = backend.start_training(model, setup)

    tok = model.codec.tokenizer
    tok.padding_side = "left"
    base = AutoModelForCausalLM.from_pretrained(str(model.path), dtype=torch.float32)
    if args.method == "lora":
        config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"],
                            task_type=TaskType.CAUSAL_LM)
    else:
        config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=20)
    plain = get_peft_model(base, config)
    plain.train()
    opt = torch.optim.AdamW([p for p in plain.parameters() if p.requires_grad], lr=1e-3)
    word_ids = torch.tensor([tok(" " + w, add_special_tokens=False)["input_ids"][0]
                             for w in v.flat_words])
    texts = [[it.prompt.without_soft().prefix_text() for it in b] for b in batches]
    labels = [torch.tensor([it.label for it in b]) for b in batches]

    def ours(i: int) -> float:
        loss = session.forward_backward(batches[i], 1.0)
        session.optimizer_step(1e-3, 1.0)
        return loss

    def raw(i: int, keep: bool) -> float:
        enc = tok(texts[i], return_tensors="pt", padding=True, add_special_tokens=False)
        kw = {"logits_to_keep": 1} if keep else {}
        logits = plain(**enc, **kw).logits[:, -1]
        scores = torch.log_softmax(logits.float(), -1)[:, word_ids]
        loss = torch.nn.functional.cross_entropy(scores, labels[i])
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in plain.parameters() if p.requires_grad], 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss)

    sides = {"ours": ours, "plain_keep1": lambda i: raw(i, True),
             "plain_full_logits": lambda i: raw(i, False)}
    for fn in sides.values():  # warm-up step on batch 0
        fn(0)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for i in range(1, args.steps + 1):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"method={args.method} model={args.model} batch={args.batch} steps={args.steps} "
          f"threads={torch.get_num_threads()} trainable(ours)={session.trainable_params}")
    for k, t in med.items():
        print(f"{k:18s} {t:7.3f} s/step (median; min {min(times[k]):.3f})")
    best_plain = min(med["plain_keep1"], med["plain_full_logits"])
    print(f"ratio ours/plain(best) = {med['ours'] / best_plain:.3f}")
    print(f"ratio ours/plain_full_logits = {med['ours'] / med['plain_full_logits']:.3f}")


if __name__ == "__main__":
    main()
