"""A tiny policy over discrete prompts: one softmax per prompt position over a word list.

RLPrompt trains an MLP on a frozen LM; with rewards that cost a model call per example, a
few hundred samples is what a budget buys, and independent per-position logits learn from
that few. Trained by REINFORCE with the batch-mean reward as the baseline, and an entropy
bonus so it keeps exploring until rewards separate the words. numpy only.
"""

from __future__ import annotations

import numpy as np


class PositionPolicy:
    def __init__(self, positions: int, words: int, rng: np.random.Generator, *,
                 lr: float = 1.0, entropy: float = 0.01) -> None:
        self.logits = np.zeros((positions, words))
        self.rng = rng
        self.lr = lr
        self.entropy = entropy

    def probs(self) -> np.ndarray:
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def sample(self, n: int) -> np.ndarray:
        """(n, positions) word indices."""
        p = self.probs()
        out = np.empty((n, p.shape[0]), dtype=int)
        for j in range(p.shape[0]):
            out[:, j] = self.rng.choice(p.shape[1], size=n, p=p[j])
        return out

    def greedy(self) -> np.ndarray:
        return np.argmax(self.logits, axis=1)

    def update(self, actions: np.ndarray, rewards: np.ndarray) -> np.ndarray:
        """One REINFORCE step; returns the advantages used."""
        rewards = np.asarray(rewards, dtype=float)
        adv = rewards - rewards.mean()
        std = adv.std()
        if std > 1e-8:
            adv = adv / std
        p = self.probs()
        grad = np.zeros_like(self.logits)
        for a, g in zip(actions, adv, strict=False):
            onehot = np.zeros_like(self.logits)
            onehot[np.arange(len(a)), a] = 1.0
            grad += g * (onehot - p)
        grad /= max(1, len(actions))
        log_p = np.log(p + 1e-12)
        entropy_grad = -p * (log_p - (p * log_p).sum(axis=1, keepdims=True))
        self.logits += self.lr * (grad + self.entropy * entropy_grad)
        return adv
