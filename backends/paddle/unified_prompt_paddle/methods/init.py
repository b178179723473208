"""Initial values drawn with numpy from the training seed, in a fixed order.

Framework-neutral on purpose: the same draws could seed any backend, and they do not
depend on paddle's random generator.
"""

from __future__ import annotations

import numpy as np


def linear(rng: np.random.Generator, n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """torch.nn.Linear's default: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias (out, in)."""
    bound = 1.0 / np.sqrt(n_in)
    w = rng.uniform(-bound, bound, (n_out, n_in)).astype(np.float32)
    b = rng.uniform(-bound, bound, (n_out,)).astype(np.float32)
    return w, b


def lora_pair(rng: np.random.Generator, r: int, n_in: int, n_out: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """PEFT's LoRA init: A kaiming-uniform(a=sqrt(5)) = U(+-1/sqrt(in)), B zeros."""
    bound = 1.0 / np.sqrt(n_in)
    return (rng.uniform(-bound, bound, (r, n_in)).astype(np.float32),
            np.zeros((n_out, r), np.float32))


def soft_rows(rng: np.random.Generator, embedding: np.ndarray, count: int, how: str,
              text_ids: list[int] | None = None) -> np.ndarray:
    """Soft-prompt rows: embeddings of text or of sampled vocabulary tokens, or N(0, 1)."""
    if text_ids:
        ids = (text_ids * (count // len(text_ids) + 1))[:count]
        return embedding[np.asarray(ids)].astype(np.float32)
    if how == "random":  # PEFT's RANDOM: nn.Embedding's N(0, 1)
        return rng.standard_normal((count, embedding.shape[1])).astype(np.float32)
    ids = rng.integers(0, embedding.shape[0], count)
    return embedding[ids].astype(np.float32)
