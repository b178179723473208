"""Vocabulary, tokenization and trigger-token gradients for AutoPrompt-style search.

`token_gradients` fills each soft slot with the embeddings of its trigger tokens (a
throwaway prompt-tuning table over the caller's handle, so the base network and its
parameters are untouched), takes the training loss of `losses.batch_loss` (the session's
arithmetic, dropout off) and asks `paddle.grad` for the gradient at those rows only: no
gradient is accumulated on any parameter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from unified_prompt.backend import TrainItem, TrainSetup
from unified_prompt.encoding import check_triggers
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.losses import batch_loss
from unified_prompt_paddle.runtime import paddle, to_tensor


def vocabulary(model: PaddleModel) -> list[str]:
    """Each id's text decoded alone; one entry per input-embedding row ("" past the
    tokenizer's ids)."""
    rows = int(model.net.get_input_embeddings().weight.shape[0])
    texts = model.tokenizer.vocabulary[:rows]
    return [*texts, *([""] * (rows - len(texts)))]


def token_gradients(model: PaddleModel, items: Sequence[TrainItem], setup: TrainSetup,
                    triggers: dict[int, list[int]]) -> dict[int, np.ndarray]:
    """{slot: (len(triggers[slot]), vocab) = dLoss/d(trigger embeddings) @ E.T}."""
    from unified_prompt_paddle.methods.soft import SoftPrompts

    pd = paddle()
    embedding = model.net.get_input_embeddings().weight  # (vocab, hidden)
    check_triggers(items, triggers, int(embedding.shape[0]), model.tokenizer.encode_text)
    rows = {s: pd.index_select(embedding, to_tensor(np.asarray(ids, np.int64))).numpy()
            for s, ids in triggers.items()}
    soft = SoftPrompts({s: len(ids) for s, ids in triggers.items()}, model.hidden_size,
                       None, 0, rows, np.random.default_rng(0))
    work = model.derive(soft=soft)
    work.train(False)
    params = [soft.vectors(s) for s in soft.slots]
    loss = batch_loss(work, setup, items)
    grads = pd.grad(loss, params)
    with pd.no_grad():
        return {s: pd.matmul(g, embedding, transpose_y=True).numpy()
                for s, g in zip(soft.slots, grads, strict=True)}
