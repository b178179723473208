"""The reparameterisation encoders in numpy, on canonical (torch-layout) state.

Adapter files hold what the encoders *produce* as well as their weights (PEFT's
prompt_embeddings, the hf backend's soft_prompt.safetensors, paddlenlp's pre_caches.npy);
computing those here lets conversion run without either framework.
"""

from __future__ import annotations

import numpy as np

State = dict[str, np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _lstm_direction(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
                    b_hh: np.ndarray, reverse: bool) -> np.ndarray:
    """One LSTM direction over x (T, in); torch's gate order i, f, g, o."""
    hidden = w_hh.shape[1]
    h = np.zeros(hidden)
    c = np.zeros(hidden)
    out = np.zeros((x.shape[0], hidden))
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        gates = w_ih @ x[t] + b_ih + w_hh @ h + b_hh
        i, f, g, o = np.split(gates, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        out[t] = h
    return out


def _linear(state: State, prefix: str, x: np.ndarray) -> np.ndarray:
    return x @ state[prefix + ".weight"].T.astype(np.float64) + state[prefix + ".bias"]


def soft_outputs(state: State) -> dict[int, np.ndarray]:
    """(n, hidden) virtual-token vectors per slot from a prompt/P-tuning state."""
    out: dict[int, np.ndarray] = {}
    slots = sorted({int(k.split(".")[1]) for k in state if k.startswith("soft.")})
    for slot in slots:
        if f"soft.{slot}" in state:
            out[slot] = np.asarray(state[f"soft.{slot}"], np.float32)
            continue
        x = np.asarray(state[f"soft.{slot}.embedding"], np.float64)
        enc = f"soft.{slot}.encoder."
        if enc + "lstm_head.weight_ih_l0" in state:
            for layer in range(2):
                parts = []
                for suffix, reverse in (("", False), ("_reverse", True)):
                    w = [np.asarray(state[f"{enc}lstm_head.{k}_l{layer}{suffix}"], np.float64)
                         for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
                    parts.append(_lstm_direction(x, *w, reverse=reverse))
                x = np.concatenate(parts, axis=1)
            x = np.maximum(_linear(state, enc + "mlp_head.0", x), 0.0)
            x = _linear(state, enc + "mlp_head.2", x)
        else:
            x = np.maximum(_linear(state, enc + "mlp_head.0", x), 0.0)
            x = np.maximum(_linear(state, enc + "mlp_head.2", x), 0.0)
            x = _linear(state, enc + "mlp_head.4", x)
        out[slot] = x.astype(np.float32)
    return out


def prefix_flat(state: State) -> np.ndarray:
    """(n, layers * 2 * kv_dim) prefix keys/values in PEFT's column order."""
    emb = np.asarray(state["prefix.embedding"], np.float64)
    if "prefix.transform.0.weight" not in state:
        return emb.astype(np.float32)
    hidden = np.tanh(_linear(state, "prefix.transform.0", emb))
    return _linear(state, "prefix.transform.2", hidden).astype(np.float32)
