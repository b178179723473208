"""CPU training step time of the paddle backend against a plain paddlenlp + paddle loop.

Both sides train the same method on the same model, batches and optimizer (AdamW, clip 1.0)
in one process, interleaved step by step so other load on the machine hits both alike. The
plain loop is what a user writes with paddlenlp: ids (left padding) -> LlamaForCausalLM
(LoRAModel-wrapped for LoRA; a soft prompt concatenated into inputs_embeds for prompt
tuning) -> log-softmax at the last position -> cross-entropy over the two label words ->
backward -> AdamW with ClipGradByGlobalNorm -> clear_grad. Two variants: as usually written
(`model(...).logits` + `F.log_softmax`, which paddle 3.3 runs ~1000x slower than it should
on CPU), and the fastest plain code (last hidden state only, x - logsumexp(x)); the ratio
reported is against the faster.

    .venv/bin/python bench/paddle_train_step.py --method prompt_tuning [--steps 6] [--batch 8]
    .venv/bin/python bench/paddle_train_step.py --method lora
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--method", choices=["prompt_tuning", "lora"], default="prompt_tuning")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per side")
    ap.add_argument("--usual", action="store_true",
                    help="also time the usually-written plain loop (F.log_softmax: slow)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    import numpy as np
    from unified_prompt_paddle.loading import clone_net
    from unified_prompt_paddle.runtime import paddle, paddlenlp

    from unified_prompt.backend import TrainSetup
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.data.bundled import load_dataset
    from unified_prompt.prompts.builder import PromptBuilder
    from unified_prompt.registry import create_backend

    pd = paddle()
    F = pd.nn.functional
    method = {"prompt_tuning": {"num_virtual_tokens": 20, "init": "random"},
              "lora": {"r": 8, "alpha": 16}}[args.method]
    spec = ExperimentSpec.model_validate({
        "backend": {"name": "paddle", "model": args.model},
        "data": {"dataset": "rotten_tomatoes"},
        "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                   "verbalizer": {"positive": "positive", "negative": "negative"}},
        "finetune": {"method": args.method, **method}})
    builder = PromptBuilder(spec)
    v = builder.verbalizer
    examples = load_dataset("rotten_tomatoes")[: args.batch * (args.steps + 1)]
    items = builder.train_items(examples)
    batches = [items[i:i + args.batch] for i in range(0, len(items), args.batch)]

    backend = create_backend("paddle")
    model = backend.load_model(args.model)
    setup = TrainSetup(method=spec.finetune, task="classification", seed=0,
                       words=v.flat_words, word_label=v.word_label, n_labels=2,
                       soft_slots=builder.template.soft_slots)
    session = backend.start_training(model, setup)

    # -- the plain paddlenlp loop -------------------------------------------------------
    tok = model.tokenizer
    net = clone_net(model)
    for p in net.parameters():
        p.stop_gradient = True
    soft = None
    if args.method == "lora":
        peft = paddlenlp().peft
        targets = [re.escape(f"llama.layers.{i}.self_attn.{m}")
                   for i in range(model.hf_config["num_hidden_layers"]) for m in ("q_proj", "v_proj")]
        net = peft.LoRAModel(net, peft.LoRAConfig(r=8, lora_alpha=16, target_modules=targets))
        trainable = [p for p in net.parameters() if not p.stop_gradient]
        llama = net.model.llama
        lm_head = net.model.lm_head
    else:
        emb = net.get_input_embeddings().weight.numpy()
        soft = pd.create_parameter([20, emb.shape[1]], "float32",
                                   default_initializer=pd.nn.initializer.Normal())
        trainable = [soft]
        llama, lm_head = net.llama, net.lm_head
    net.train()
    opt = pd.optimizer.AdamW(learning_rate=1e-3, parameters=trainable,
                             grad_clip=pd.nn.ClipGradByGlobalNorm(1.0))
    word_ids = pd.to_tensor([tok.encode_text(" " + w)[0] for w in v.flat_words])
    texts = [[it.prompt.without_soft().prefix_text() for it in b] for b in batches]
    labels = [pd.to_tensor([it.label for it in b]) for b in batches]

    def left_pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), tok.special.pad, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = r
            mask[i, width - len(r):] = 1
        return ids, mask

    def raw(i: int, usual: bool) -> float:
        ids, mask = left_pad([tok.encode_text(t) for t in texts[i]])
        ids_t, mask_t = pd.to_tensor(ids), pd.to_tensor(mask)
        kwargs = {"input_ids": ids_t, "attention_mask": mask_t}
        if soft is not None:
            embeds = net.get_input_embeddings()(ids_t)
            prompt = soft.unsqueeze(0).expand([ids.shape[0], -1, -1])
            kwargs = {"inputs_embeds": pd.concat([prompt, embeds], axis=1),
                      "attention_mask": pd.concat([pd.ones([ids.shape[0], 20], "int64"),
                                                   mask_t], axis=1)}
        if usual:
            logits = net(**kwargs, return_dict=True).logits[:, -1]
            scores = pd.gather(F.log_softmax(logits, axis=-1), word_ids, axis=1)
        else:
            hidden = llama(**kwargs, return_dict=False)[0][:, -1]
            logits = lm_head(hidden)
            scores = pd.gather(logits - pd.logsumexp(logits, axis=-1, keepdim=True), word_ids,
                               axis=1)
        loss = F.cross_entropy(scores, labels[i])
        loss.backward()
        opt.step()
        opt.clear_grad()
        return float(loss)

    def ours(i: int) -> float:
        loss = session.forward_backward(batches[i], 1.0)
        session.optimizer_step(1e-3, 1.0)
        return loss

    sides = {"ours": ours, "plain_fast": lambda i: raw(i, False)}
    if args.usual:
        sides["plain_usual"] = lambda i: raw(i, True)
    for fn in sides.values():  # warm-up step on batch 0
        fn(0)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for i in range(1, args.steps + 1):
        for name, fn in sides.items():
            t0 = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(t) for k, t in times.items()}
    print(f"method={args.method} model={args.model} batch={args.batch} steps={args.steps} "
          f"trainable(ours)={session.trainable_params} paddle={pd.__version__}")
    for k, t in med.items():
        print(f"{k:12s} {t:7.3f} s/step (median; min {min(times[k]):.3f})")
    print(f"ratio ours/plain_fast = {med['ours'] / med['plain_fast']:.3f}")
    if "plain_usual" in med:
        print(f"ratio ours/plain_usual = {med['ours'] / med['plain_usual']:.3f}")


if __name__ == "__main__":
    main()
