"""Training losses, written with the exact arithmetic the core uses for predictions.

Classification (PET style): word log-probs (summed, or per-token mean with
word_score=mean), log-sum-exp over each label's words, cross-entropy over labels — what
`Verbalizer.label_scores` + softmax compute. Generation: mean negative log-likelihood of
the target's tokens plus EOS (`encode_continuation(prompt, target)`), per example, then
the mean over the batch. Encoder-decoder models: the same two losses with the words or the
target written by the decoder (unified_prompt_hf.seq2seq).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from unified_prompt.backend import ModelKind, TrainItem, TrainSetup
from unified_prompt.decoding import mask_after
from unified_prompt.encoding import Encoded
from unified_prompt.errors import UserInputError
from unified_prompt.objectives import TASK_CLASS_STRIDE, ObjectiveSpec, by_task
from unified_prompt_hf.forward import check_soft, make_batch, run_prompt
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.objectives import combine, margin_terms
from unified_prompt_hf.scoring import prompt_budget, require_masks, word_logprobs


def label_log_scores(logprob: torch.Tensor, n_tokens: torch.Tensor, word_label: Sequence[int],
                     n_labels: int, reduction: str) -> torch.Tensor:
    """(B, labels) scores from (B, W) word log-probs, as Verbalizer.label_scores does."""
    lp = logprob.float()
    if reduction == "mean":
        lp = lp / n_tokens.clamp(min=1).to(lp.dtype)
    index = torch.tensor(list(word_label), device=lp.device)
    return torch.stack([torch.logsumexp(lp[:, index == j], dim=1) for j in range(n_labels)],
                       dim=1)


def classification_loss(handle: HFModel, items: Sequence[TrainItem], setup: TrainSetup, *,
                        naive: bool = False) -> torch.Tensor:
    """The objective (finetune.objective) over the batch; a mixture's items are scored
    against their own task's label words, one forward per task present."""
    if any(item.label is None for item in items):
        raise UserInputError("classification training needs a label on every example")
    objective = getattr(setup.method, "objective", None) or ObjectiveSpec()
    contrastive = objective.name == "contrastive"
    ces, margins, reps, classes = [], [], [], []
    for task, idx in by_task(items):
        space = setup.label_space(task)
        seen: list[torch.Tensor] | None = [] if contrastive else None
        lp, counts = word_logprobs(handle, [items[i].prompt for i in idx], space.words,
                                   grad=True, naive=naive, reps=seen)
        scores = label_log_scores(lp, counts, space.word_label, space.n_labels,
                                  space.word_score)
        gold = torch.tensor([int(items[i].label) for i in idx],  # type: ignore[arg-type]
                            device=scores.device)
        if bool(((gold < 0) | (gold >= space.n_labels)).any()):
            raise UserInputError("a training example's label is outside the verbalizer")
        ces.append(torch.nn.functional.cross_entropy(scores, gold, reduction="none"))
        if objective.name == "margin":
            margins.append(margin_terms(scores, gold, objective.margin))
        if seen:
            reps.append(seen[0])
        classes.append(gold + TASK_CLASS_STRIDE * task)
    return combine(objective, torch.cat(ces), torch.cat(margins) if margins else None,
                   torch.cat(reps) if reps else None, torch.cat(classes))


def target_ids(handle: HFModel, item: TrainItem, limit: int) -> list[int]:
    """The target's tokens at the mask, then the end token (EOS, or SEP for masked LMs)."""
    end = handle.codec.special.sep if handle.kind == ModelKind.MASKED else handle.codec.eos
    ids = handle.codec.continuation(item.prompt, item.target) if item.target else []
    ids = ids[: max(1, limit - 1)]
    return ids + ([int(end)] if end is not None else [])


def generation_loss(handle: HFModel, items: Sequence[TrainItem]) -> torch.Tensor:
    if handle.seq2seq:
        from unified_prompt_hf import seq2seq

        targets = [target_ids(handle, item, handle.max_length) for item in items]
        return seq2seq.generation_loss(handle, items, targets)
    if handle.causal:
        return _causal_generation_loss(handle, items)
    return _masked_generation_loss(handle, items)


def _causal_generation_loss(handle: HFModel, items: Sequence[TrainItem]) -> torch.Tensor:
    budget = prompt_budget(handle)
    seqs, targets = [], []
    for item in items:
        tgt = target_ids(handle, item, budget // 2)
        enc = handle.codec.causal(item.prompt, budget, reserve=len(tgt))
        seqs.append(Encoded(enc.ids + tuple(tgt[:-1]), enc.soft, ()))
        targets.append(tgt)
    check_soft(handle, seqs)
    keep = max(len(t) for t in targets)
    logits, _ = run_prompt(handle, make_batch(handle, seqs), keep=keep, grad=True)
    lsm = torch.log_softmax(logits.float(), dim=-1)
    losses = []
    for r, tgt in enumerate(targets):
        cols = torch.arange(keep - len(tgt), keep, device=lsm.device)
        toks = torch.tensor(tgt, device=lsm.device)
        losses.append(-lsm[r, cols, toks].mean())
    return torch.stack(losses).mean()


def _masked_generation_loss(handle: HFModel, items: Sequence[TrainItem]) -> torch.Tensor:
    """Each target token predicted at one mask appended after the tokens before it,
    the factorisation masked-LM generation decodes with."""
    mask_id = handle.codec.special.mask
    rows, owner, toks = [], [], []
    for i, item in enumerate(items):
        tgt = target_ids(handle, item, handle.max_length // 2)
        base = handle.codec.masked(item.prompt, handle.max_length, n_masks=len(tgt))
        require_masks([base])
        for j, tok in enumerate(tgt):
            rows.append(mask_after(base, tgt[:j], int(mask_id)))
            owner.append(i)
            toks.append(tok)
    check_soft(handle, rows)
    batch = make_batch(handle, rows)
    logits, _ = run_prompt(handle, batch, grad=True)
    dev = logits.device
    at = torch.tensor([cols[0] for cols in batch.mask_cols], device=dev)
    lsm = torch.log_softmax(logits[torch.arange(len(rows), device=dev), at].float(), dim=-1)
    nll = -lsm[torch.arange(len(rows), device=dev), torch.tensor(toks, device=dev)]
    owners = torch.tensor(owner, device=dev)
    per = torch.zeros(len(items), device=dev).index_add(0, owners, nll)
    counts = torch.zeros(len(items), device=dev).index_add(0, owners, torch.ones_like(nll))
    return (per / counts).mean()


def batch_loss(handle: HFModel, items: Sequence[TrainItem], setup: TrainSetup, *,
               naive: bool = False) -> torch.Tensor:
    if setup.task == "generation":
        return generation_loss(handle, items)
    return classification_loss(handle, items, setup, naive=naive)
