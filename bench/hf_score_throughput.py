"""CPU scoring throughput of the hf backend against one raw batched transformers forward.

Same model, same prompts, same batch size, in one process, interleaved round by round (so
other load on the machine hits both sides alike). The raw side is the best plain code:
tokenizer(..., padding left) + model(..., logits_to_keep=1) + log_softmax + gather; a second
raw variant computes full logits (what `model(**batch)` does by default).

    .venv/bin/python bench/hf_score_throughput.py [--model smollm2-135m] [--n 128] [--batch 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the backend does; before torch loads

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=128, help="examples per round")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from unified_prompt.data.bundled import load_dataset
    from unified_prompt.prompts.template import Template
    from unified_prompt.registry import create_backend

    backend = create_backend("hf", {"device": "cpu"})
    model = backend.load_model(args.model)
    template = Template("Review: {text}\nSentiment: {mask}")
    examples = load_dataset("rotten_tomatoes")[: args.n]
    prompts = [template.render(e.fields) for e in examples]
    words = ["positive", "negative"]

    tok = model.codec.tokenizer
    tok.padding_side = "left"
    module = model.module
    texts = [p.prefix_text() for p in prompts]
    word_ids = [tok(" " + w, add_special_tokens=False)["input_ids"][0] for w in words]
    index = torch.tensor(word_ids)

    def ours() -> object:
        return backend.score(model, prompts, words, batch_size=args.batch).logprob

    def raw(keep: int | None) -> object:
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), args.batch):
                enc = tok(texts[i:i + args.batch], return_tensors="pt", padding=True,
                          add_special_tokens=False)
                kw = {"logits_to_keep": keep} if keep else {}
                logits = module(**enc, **kw).logits[:, -1]
                out.append(torch.log_softmax(logits.float(), -1)[:, index])
        return torch.cat(out).numpy()

    sides = {"ours": ours, "raw_keep1": lambda: raw(1), "raw_full_logits": lambda: raw(None)}
    ours()  # warm-up (tokenizer caches, allocator)
    raw(1)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    a, b = ours(), raw(1)
    agree = float((a.argmax(1) == b.argmax(1)).mean())
    diff = float(abs(a - b).max())
    print(f"model={args.model} n={args.n} batch={args.batch} threads={torch.get_num_threads()}")
    rate = {k: args.n / statistics.median(v) for k, v in times.items()}
    for k, v in rate.items():
        print(f"{k:16s} {v:8.1f} examples/s  (median of {args.rounds}: "
              f"{statistics.median(times[k]):.2f}s)")
    print(f"ratio ours/raw_keep1 = {rate['ours'] / rate['raw_keep1']:.3f}")
    print(f"ratio ours/raw_full_logits = {rate['ours'] / rate['raw_full_logits']:.3f}")
    print(f"same argmax on {agree:.3f} of examples; max |logprob diff| = {diff:.2e}")


if __name__ == "__main__":
    main()
