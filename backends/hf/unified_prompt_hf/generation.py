"""Text generation: greedy (temperature 0) or sampled, batched, stop strings, any method.

A small loop over the backend's own forward (not `model.generate`) so soft prompts anywhere
in the template, a trained prefix cache and explicit positions behave exactly as in scoring.
Masked LMs generate by appending one mask at a time after what they have written so far;
encoder-decoder models decode after the encoder's output (unified_prompt_hf.seq2seq).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from unified_prompt.backend import GenerationParams, Progress
from unified_prompt.decoding import finish, length_order, mask_after
from unified_prompt.encoding import Encoded
from unified_prompt.prompts.segments import Rendered
from unified_prompt.sampling import repeat_for_n
from unified_prompt_hf.forward import check_soft, make_batch, run_continuation, run_prompt
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.scoring import prompt_budget, require_masks


def stop_ids(handle: HFModel) -> set[int]:
    """Token ids that end generation: EOS of the tokenizer and of the generation config."""
    ids: set[int] = set()
    if handle.codec.eos is not None:
        ids.add(int(handle.codec.eos))
    gen = getattr(handle.module, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None) if gen is not None else None
    if isinstance(eos, int):
        ids.add(eos)
    elif isinstance(eos, (list, tuple)):
        ids.update(int(e) for e in eos)
    if not handle.causal:
        for t in (handle.codec.special.sep, handle.codec.special.cls, handle.codec.pad):
            if t is not None:
                ids.add(int(t))
    return ids


class Picker:
    """Greedy argmax, or sampling at a temperature (within the top_p nucleus) from a
    seeded generator."""

    def __init__(self, params: GenerationParams, device: torch.device) -> None:
        self.temperature = params.temperature
        self.top_p = params.top_p
        self.generator = None
        if self.temperature > 0:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(params.seed if params.seed is not None else 0)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.temperature <= 0:
            return logits.argmax(-1)
        probs = torch.softmax(logits / self.temperature, dim=-1)
        if self.top_p < 1.0:
            probs = nucleus(probs, self.top_p)
        return torch.multinomial(probs, 1, generator=self.generator)[:, 0]


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Row-wise: only the most likely tokens whose mass reaches top_p (the best always
    kept, ties by id), renormalised; as unified_prompt.sampling.nucleus_probs."""
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    keep_sorted = (sorted_p.cumsum(-1) - sorted_p) < top_p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    probs = torch.where(keep, probs, torch.zeros_like(probs))
    return probs / probs.sum(-1, keepdim=True)


@dataclass
class Steps:
    """What a generation loop produced per row: the chosen token ids, whether an end token
    stopped the row, and (when recorded) each chosen token's log-prob and the `top_k` best
    (id, log-prob) alternatives at its position."""

    ids: list[list[int]]
    ended: list[bool]
    logprobs: list[list[float]]
    top: list[list[list[tuple[int, float]]]]


def causal_steps(handle: HFModel, encoded: Sequence[Encoded], params: GenerationParams,
                 picker: Picker, enders: set[int], *, record: bool = False,
                 top_k: int = 0) -> Steps:
    """Decode after each encoded prompt (one left-padded batch, KV cache extended in place)."""
    check_soft(handle, encoded)
    batch = make_batch(handle, encoded)
    logits, state = run_prompt(handle, batch, use_cache=True, keep=1)
    assert state is not None
    n = batch.size
    steps = Steps([[] for _ in range(n)], [False] * n, [[] for _ in range(n)],
                  [[] for _ in range(n)])
    done = [False] * n
    stops = [s for s in params.stop if s]
    for step in range(params.max_new_tokens):
        chosen = picker(logits[:, -1])
        lp = torch.log_softmax(logits[:, -1].float(), dim=-1) if record else None
        best = lp.topk(min(top_k, lp.shape[-1]), dim=-1) if lp is not None and top_k > 0 else None
        for i, t in enumerate(chosen.tolist()):
            if done[i]:
                continue
            if t in enders:
                done[i] = steps.ended[i] = True
                continue
            steps.ids[i].append(t)
            if lp is not None:
                steps.logprobs[i].append(float(lp[i, t]))
                steps.top[i].append([] if best is None else list(zip(
                    best.indices[i].tolist(), best.values[i].tolist(), strict=True)))
            if stops and any(s in handle.codec.decode(steps.ids[i]) for s in stops):
                done[i] = True
        if all(done) or step == params.max_new_tokens - 1:
            break
        ones = torch.ones((n, 1), dtype=batch.mask.dtype, device=handle.device)
        logits = run_continuation(handle, state, chosen[:, None], ones, use_cache=True)
    return steps


def _causal_batch(handle: HFModel, prompts: Sequence[Rendered], params: GenerationParams,
                  picker: Picker, enders: set[int]) -> list[list[int]]:
    encoded = [handle.codec.causal(p, prompt_budget(handle), reserve=params.max_new_tokens)
               for p in prompts]
    return causal_steps(handle, encoded, params, picker, enders).ids


def _masked_batch(handle: HFModel, prompts: Sequence[Rendered], params: GenerationParams,
                  picker: Picker, enders: set[int]) -> list[list[int]]:
    mask_id = handle.codec.special.mask
    assert mask_id is not None
    base = [handle.codec.masked(p, handle.max_length, n_masks=params.max_new_tokens + 1)
            for p in prompts]
    require_masks(base)
    check_soft(handle, base)
    out: list[list[int]] = [[] for _ in prompts]
    done = [False] * len(prompts)
    stops = [s for s in params.stop if s]
    for _ in range(params.max_new_tokens):
        live = [i for i in range(len(prompts)) if not done[i]]
        if not live:
            break
        batch = make_batch(handle, [mask_after(base[i], out[i], mask_id) for i in live])
        logits, _ = run_prompt(handle, batch)
        rows = torch.stack([logits[r, cols[0]] for r, cols in enumerate(batch.mask_cols)])
        for i, t in zip(live, picker(rows).tolist(), strict=True):
            if t in enders:
                done[i] = True
                continue
            out[i].append(t)
            if stops and any(s in handle.codec.decode(out[i]) for s in stops):
                done[i] = True
    return out


def _seq2seq_batch(handle: HFModel, prompts: Sequence[Rendered], params: GenerationParams,
                   picker: Picker, enders: set[int]) -> list[list[int]]:
    """The decoder writes after the encoder read the prompt; it ends at its own end tokens
    (DecoderLayout.enders), not at `enders`."""
    from unified_prompt_hf.seq2seq import generate_ids

    return generate_ids(handle, prompts, params, picker)


def generate(handle: HFModel, prompts: Sequence[Rendered], params: GenerationParams, *,
             batch_size: int = 16, progress: Progress | None = None) -> list[str]:
    """Generated text per prompt (n per prompt, prompt-major, when params.n > 1), stop
    strings removed."""
    if params.n > 1:
        return repeat_for_n(lambda _, ps, p, **kw: generate(handle, ps, p, **kw), None, prompts,
                            params, batch_size=batch_size, progress=progress)
    texts = [""] * len(prompts)
    if not prompts or params.max_new_tokens < 1:
        return texts
    picker = Picker(params, handle.device)
    enders = stop_ids(handle)
    run = _causal_batch if handle.causal else _masked_batch
    if handle.seq2seq:
        run = _seq2seq_batch
    order = length_order(prompts)
    with torch.inference_mode(), handle.evaluating():
        for start in range(0, len(prompts), max(1, batch_size)):
            idx = order[start:start + batch_size]
            tokens = run(handle, [prompts[i] for i in idx], params, picker, enders)
            for i, toks in zip(idx, tokens, strict=True):
                texts[i] = finish(handle.codec.decode(toks), prompts[i], params.stop)
            if progress is not None:
                progress(len(idx))
    return texts

