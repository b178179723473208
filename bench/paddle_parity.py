"""Real-model parity: the paddle and hf backends on smollm2-135m (fp32, CPU, same weights).

Checks, and prints with their sizes:
  - token ids of every test-split prompt (encode_causal + label-word continuations) equal;
  - vocabulary logits of a padded batch within 1e-3 (max abs);
  - label-word log-probs of --n test prompts within 1e-3, and the same predictions.

    .venv/bin/python bench/paddle_parity.py [--n 256] [--model smollm2-135m]
"""

from __future__ import annotations

import argparse
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--n", type=int, default=256, help="test prompts scored on both")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import numpy as np
    import torch
    from unified_prompt_paddle.forward import head, make_batch, run
    from unified_prompt_paddle.runtime import paddle

    from unified_prompt.config import load_spec
    from unified_prompt.data.resolve import load_splits
    from unified_prompt.encoding import Encoded, encode_causal, encode_continuation
    from unified_prompt.prompts.builder import PromptBuilder
    from unified_prompt.registry import create_backend

    spec = load_spec("examples/sentiment.yaml", overrides=[f"backend.model={args.model}"])
    splits = load_splits(spec.data, spec.task, spec.seed)
    builder = PromptBuilder(spec, splits.train)
    prompts = builder.render(splits.test)
    words = builder.verbalizer.flat_words
    hf, pd = create_backend("hf", {"device": "cpu"}), create_backend("paddle")
    mh, mp = hf.load_model(args.model), pd.load_model(args.model)

    t0 = time.perf_counter()
    tok, codec = mp.tokenizer, mh.codec
    same = 0
    for p in prompts:
        ours = encode_causal(p, tok.encode_text, tok.special, max_length=mp.max_length,
                             reserve=2, placeholder=tok.special.pad)
        conts = [encode_continuation(p, w, tok.encode_text) for w in words]
        same += ours == codec.causal(p, mh.max_length, reserve=2) and \
            conts == [codec.continuation(p, w) for w in words]
    print(f"token ids identical for {same}/{len(prompts)} test prompts "
          f"({time.perf_counter() - t0:.1f}s)")

    batch = make_batch([Encoded(tuple(tok.encode_text(p.prefix_text()))) for p in prompts[:8]],
                       tok.special.pad)
    ids, mask = batch.ids, batch.mask
    with torch.no_grad():
        theirs = mh.module(input_ids=torch.tensor(ids),
                           attention_mask=torch.tensor(mask)).logits.numpy()
    with paddle().no_grad():
        ours_logits = head(mp, run(mp, ids, mask, batch.positions)[0]).numpy()
    diff = np.abs(ours_logits - theirs)[mask.astype(bool)].max()
    print(f"logits: max |diff| = {diff:.2e} over {int(mask.sum())} positions x "
          f"{theirs.shape[-1]} vocab (scale {np.abs(theirs).max():.1f})")

    t0 = time.perf_counter()
    a = hf.score(mh, prompts[: args.n], words).logprob
    t_hf = time.perf_counter() - t0
    t0 = time.perf_counter()
    b = pd.score(mp, prompts[: args.n], words).logprob
    t_pd = time.perf_counter() - t0
    print(f"label-word log-probs on {args.n} test prompts: max |diff| = {np.abs(a - b).max():.2e};"
          f" same prediction on {int((a.argmax(1) == b.argmax(1)).sum())}/{args.n} "
          f"(hf {t_hf:.1f}s, paddle {t_pd:.1f}s)")


if __name__ == "__main__":
    main()
