"""Training losses with the core's arithmetic, as paddle tensors.

Classification: word log-probs (summed over tokens, or their per-token mean), log-sum-exp
over each label's words, log-softmax over labels, mean negative log-likelihood of the gold
label; exactly `Verbalizer.label_scores` followed by cross-entropy. Generation: the
target's tokens and EOS after the prompt, mean negative log-likelihood per example, then
the mean over the batch (the reference backend's arithmetic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from unified_prompt.backend import ModelKind, TrainItem, TrainSetup
from unified_prompt.decoding import mask_after
from unified_prompt.encoding import encode_causal, encode_continuation, encode_masked
from unified_prompt.errors import UserInputError
from unified_prompt.objectives import TASK_CLASS_STRIDE, ObjectiveSpec, by_task
from unified_prompt_paddle.forward import gather_rows, head, log_softmax, make_batch, run
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.objectives import combine, margin_terms
from unified_prompt_paddle.runtime import paddle, to_tensor
from unified_prompt_paddle.scoring import cached_encoder, prompt_budget, soft_offsets, word_ids, word_logprobs


def classification_loss(model: PaddleModel, setup: TrainSetup, batch: Sequence[TrainItem]
                        ) -> Any:
    """The objective (finetune.objective) over the batch; a mixture's items are scored
    against their own task's label words, one forward per task present."""
    pd = paddle()
    objective = getattr(setup.method, "objective", None) or ObjectiveSpec()
    contrastive = objective.name == "contrastive"
    ces, margins, reps, classes = [], [], [], []
    for task, idx in by_task(batch):
        space = setup.label_space(task)
        prompts = [batch[i].prompt for i in idx]
        wids = word_ids(model, prompts, space.words)
        seen: list[Any] | None = [] if contrastive else None
        lp = word_logprobs(model, prompts, wids, seen)  # (B, W)
        if space.word_score == "mean":
            lp = lp / to_tensor(np.maximum(wids.n_tokens, 1).astype(np.float32))
        index = np.asarray(space.word_label)
        labels = [pd.logsumexp(pd.gather(lp, to_tensor(np.flatnonzero(index == j)), axis=1),
                               axis=1) for j in range(space.n_labels)]
        scores = pd.stack(labels, axis=1)  # (B, n_labels)
        log_p = scores - pd.logsumexp(scores, axis=1, keepdim=True)
        gold = np.array([batch[i].label for i in idx], dtype=np.int64)
        if (gold < 0).any() or (gold >= space.n_labels).any():
            raise UserInputError("a training example's label is outside the verbalizer")
        ces.append(-pd.take_along_axis(log_p, to_tensor(gold[:, None]), axis=1)[:, 0])
        if objective.name == "margin":
            margins.append(margin_terms(scores, gold, objective.margin))
        if seen:
            reps.append(seen[0])
        classes.append(gold + TASK_CLASS_STRIDE * task)
    return combine(objective, pd.concat(ces), pd.concat(margins) if margins else None,
                   pd.concat(reps) if reps else None, np.concatenate(classes))


def _masked_generation_loss(model: PaddleModel, batch: Sequence[TrainItem]) -> Any:
    """Each target token (then SEP) predicted at one mask after the tokens before it."""
    pd = paddle()
    tok = model.tokenizer
    encode = cached_encoder(model)
    mask_id, end = tok.special.mask, tok.special.sep
    if mask_id is None:
        raise UserInputError("this masked LM's tokenizer has no mask token")
    rows, owner, ids = [], [], []
    for i, item in enumerate(batch):
        target = encode_continuation(item.prompt, item.target, encode) if item.target else []
        target = target[: max(1, model.max_length // 2 - 1)] + ([end] if end is not None else [])
        if not target:
            raise UserInputError("a generation target has no tokens")
        base = encode_masked(item.prompt, encode, tok.special, max_length=model.max_length,
                             n_masks=len(target))
        if not base.masks:
            raise UserInputError("a masked LM needs a {mask} slot in the template")
        for j, token in enumerate(target):
            rows.append(mask_after(base, target[:j], mask_id))
            owner.append(i)
            ids.append(token)
    b = make_batch(rows, tok.special.pad or 0, soft_offsets(model))
    hidden, _ = run(model, b.ids, b.mask, b.positions, b.soft)
    cols = np.array([e.masks[0] for e in rows])
    logp = log_softmax(head(model, gather_rows(hidden, np.arange(len(rows)), cols)))
    picked = pd.take_along_axis(logp, to_tensor(np.array(ids, np.int64)[:, None]), axis=1)[:, 0]
    counts = np.bincount(owner, minlength=len(batch)).astype(np.float32)
    weights = (1.0 / counts)[np.array(owner)]
    return -(picked * to_tensor(weights.astype(np.float32))).sum() / len(batch)


def generation_loss(model: PaddleModel, batch: Sequence[TrainItem]) -> Any:
    if model.kind == ModelKind.SEQ2SEQ:
        from unified_prompt_paddle.seq2seq import generation_loss as seq2seq_loss

        return seq2seq_loss(model, batch)
    if model.kind != ModelKind.CAUSAL:
        return _masked_generation_loss(model, batch)
    pd = paddle()
    tok = model.tokenizer
    encode = cached_encoder(model)
    eos = tok.special.eos
    budget = prompt_budget(model)
    targets, encoded = [], []
    for item in batch:
        target = encode_continuation(item.prompt, item.target, encode) if item.target else []
        target = target[: max(1, budget // 2 - 1)]
        if eos is not None:
            target = [*target, eos]
        if not target:
            raise UserInputError("a generation target has no tokens and the model has no EOS")
        ctx = encode_causal(item.prompt, encode, tok.special, max_length=budget,
                            reserve=len(target))
        if len(ctx) == 0:
            raise UserInputError("a causal model needs at least one prompt token")
        targets.append(target)
        encoded.append(replace(ctx, ids=(*ctx.ids, *target[:-1])))
    b = make_batch(encoded, tok.special.pad or 0, soft_offsets(model))
    hidden, _ = run(model, b.ids, b.mask, b.positions, b.soft)
    rows, cols, ids, weights = [], [], [], []
    for i, (enc, target) in enumerate(zip(encoded, targets, strict=True)):
        start = len(enc) - len(target)  # position predicting target[0]
        rows += [i] * len(target)
        cols += list(range(start, start + len(target)))
        ids += target
        weights += [1.0 / len(target)] * len(target)
    logp = log_softmax(head(model, gather_rows(hidden, np.array(rows), np.array(cols))))
    picked = pd.take_along_axis(logp, to_tensor(np.array(ids, np.int64)[:, None]), axis=1)[:, 0]
    per_token = picked * to_tensor(np.array(weights, np.float32))
    return -per_token.sum() / len(batch)


def batch_loss(model: PaddleModel, setup: TrainSetup, batch: Sequence[TrainItem]) -> Any:
    if setup.task == "generation":
        return generation_loss(model, batch)
    return classification_loss(model, setup, batch)
