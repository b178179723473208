"""CPU label-word scoring throughput: the paddle backend beside the hf backend, same machine.

Same model, prompts, label words and batch size in one process, interleaved round by round
(other load on the machine hits every side alike). Also the best plain paddlenlp code for
reference: ids (left padding) -> LlamaModel -> last hidden state -> head -> x - logsumexp(x)
-> gather (paddle's own F.log_softmax would be ~1000x slower on CPU).

    .venv/bin/python bench/paddle_score_throughput.py [--model smollm2-135m] [--n 128]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=128, help="examples per round")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-hf", action="store_true", help="skip the hf backend side")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import numpy as np
    from unified_prompt_paddle.runtime import paddle

    from unified_prompt.data.bundled import load_dataset
    from unified_prompt.prompts.template import Template
    from unified_prompt.registry import create_backend

    pd = paddle()
    template = Template("Review: {text}\nSentiment: {mask}")
    examples = load_dataset("rotten_tomatoes")[: args.n]
    prompts = [template.render(e.fields) for e in examples]
    words = ["positive", "negative"]

    ours_backend = create_backend("paddle")
    model = ours_backend.load_model(args.model)
    tok = model.tokenizer
    texts = [p.prefix_text() for p in prompts]
    index = pd.to_tensor([tok.encode_text(" " + w)[0] for w in words])

    def ours() -> np.ndarray:
        return ours_backend.score(model, prompts, words, batch_size=args.batch).logprob

    def raw() -> np.ndarray:
        out = []
        with pd.no_grad():
            for i in range(0, len(texts), args.batch):
                rows = [tok.encode_text(t) for t in texts[i:i + args.batch]]
                width = max(len(r) for r in rows)
                ids = np.full((len(rows), width), tok.special.pad, np.int64)
                mask = np.zeros_like(ids)
                for j, r in enumerate(rows):
                    ids[j, width - len(r):] = r
                    mask[j, width - len(r):] = 1
                hidden = model.net.llama(input_ids=pd.to_tensor(ids),
                                         attention_mask=pd.to_tensor(mask),
                                         return_dict=False)[0][:, -1]
                logits = model.net.lm_head(hidden)
                lp = logits - pd.logsumexp(logits, axis=-1, keepdim=True)
                out.append(pd.gather(lp, index, axis=1).numpy())
        return np.concatenate(out)

    sides = {"paddle (ours)": ours, "paddle raw": raw}
    if not args.no_hf:
        hf = create_backend("hf", {"device": "cpu"})
        hf_model = hf.load_model(args.model)

        def hf_score() -> np.ndarray:
            return hf.score(hf_model, prompts, words, batch_size=args.batch).logprob

        sides["hf backend"] = hf_score
    for fn in sides.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    print(f"model={args.model} n={args.n} batch={args.batch} words={words}")
    rate = {k: args.n / statistics.median(v) for k, v in times.items()}
    for k, v in rate.items():
        print(f"{k:14s} {v:8.1f} examples/s  (median of {args.rounds}: "
              f"{statistics.median(times[k]):.2f}s)")
    print(f"ratio paddle(ours)/paddle raw = {rate['paddle (ours)'] / rate['paddle raw']:.3f}")
    if "hf backend" in rate:
        a, b = ours(), sides["hf backend"]()
        print(f"ratio paddle(ours)/hf backend = {rate['paddle (ours)'] / rate['hf backend']:.3f}")
        print(f"paddle vs hf: max |logprob diff| = {np.abs(a - b).max():.2e}; same argmax on "
              f"{float((a.argmax(1) == b.argmax(1)).mean()):.3f} of examples")


if __name__ == "__main__":
    main()
