"""Prompt tuning and P-tuning: trainable vectors at the template's {soft} positions.

Small paddle layers of our own (paddlenlp.prompt's SoftTemplate is broken on paddle 3).
The P-tuning encoders mirror PEFT's PromptEncoder module for module (MLP: Linear-ReLU-
Linear-ReLU-Linear; LSTM: 2-layer bidirectional LSTM then Linear-ReLU-Linear), and their
canonical names are PEFT's, so a state converts by renaming and transposing only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from unified_prompt.backend import TrainSetup
from unified_prompt.encoding import soft_counts
from unified_prompt.errors import ConfigError
from unified_prompt.prompts.segments import Rendered, Soft
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.layouts import soft_entries
from unified_prompt_paddle.methods import init
from unified_prompt_paddle.methods.bindings import Bindings, bind, load_state
from unified_prompt_paddle.runtime import paddle

pd = paddle()
nn = pd.nn


def _param(layer: Any, name: str, value: np.ndarray) -> Any:
    p = layer.create_parameter(list(value.shape), dtype="float32",
                               default_initializer=nn.initializer.Assign(value))
    layer.add_parameter(name, p)
    return p


class MLPEncoder(nn.Layer):
    """PEFT's P-tuning MLP head (mlp_head.0/2/4)."""

    def __init__(self, hidden: int, width: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.mlp_head = nn.Sequential(nn.Linear(hidden, width), nn.ReLU(),
                                      nn.Linear(width, width), nn.ReLU(), nn.Linear(width, hidden))
        for idx in (0, 2, 4):
            lin = self.mlp_head[idx]
            w, b = init.linear(rng, lin.weight.shape[1], lin.weight.shape[0])
            lin.weight.set_value(w.T)
            lin.bias.set_value(b)

    def forward(self, x: Any) -> Any:
        return self.mlp_head(x)


class LSTMEncoder(nn.Layer):
    """PEFT's P-tuning LSTM head (lstm_head + mlp_head.0/2)."""

    def __init__(self, hidden: int, width: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.lstm_head = nn.LSTM(hidden, width, num_layers=2, direction="bidirect")
        self.mlp_head = nn.Sequential(nn.Linear(2 * width, 2 * width), nn.ReLU(),
                                      nn.Linear(2 * width, hidden))
        bound = 1.0 / np.sqrt(width)
        for _, p in self.lstm_head.named_parameters():
            p.set_value(rng.uniform(-bound, bound, list(p.shape)).astype(np.float32))
        for idx in (0, 2):
            lin = self.mlp_head[idx]
            w, b = init.linear(rng, lin.weight.shape[1], lin.weight.shape[0])
            lin.weight.set_value(w.T)
            lin.bias.set_value(b)

    def forward(self, x: Any) -> Any:
        out, _ = self.lstm_head(x.unsqueeze(0))
        return self.mlp_head(out[0])


class SoftPrompts(nn.Layer):
    """One block of virtual tokens per template slot; `table()` stacks them in slot order."""

    def __init__(self, counts: dict[int, int], hidden: int, encoder: str | None,
                 encoder_hidden: int, rows: dict[int, np.ndarray], rng: np.random.Generator
                 ) -> None:
        super().__init__()
        self.slots = sorted(counts)
        self.counts = dict(counts)
        self.encoder_kind = encoder
        self.offsets: dict[int, int] = {}
        offset = 0
        for slot in self.slots:
            self.offsets[slot] = offset
            offset += counts[slot]
            _param(self, f"embedding_{slot}", rows[slot])
            if encoder == "mlp":
                self.add_sublayer(f"encoder_{slot}", MLPEncoder(hidden, encoder_hidden, rng))
            elif encoder == "lstm":
                self.add_sublayer(f"encoder_{slot}", LSTMEncoder(hidden, encoder_hidden, rng))

    def vectors(self, slot: int) -> Any:
        emb = getattr(self, f"embedding_{slot}")
        if self.encoder_kind is None:
            return emb
        return getattr(self, f"encoder_{slot}")(emb)

    def table(self) -> Any:
        return pd.concat([self.vectors(s) for s in self.slots], axis=0)

    def config(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()},
                "encoder": self.encoder_kind}


def slot_counts(model: PaddleModel, slots: tuple[Soft, ...]) -> dict[int, int]:
    return soft_counts(Rendered.of(list(slots)), model.tokenizer.encode_text)


def attach(model: PaddleModel, setup: TrainSetup, rng: np.random.Generator
           ) -> tuple[PaddleModel, Bindings]:
    spec = setup.method
    if not setup.soft_slots:
        raise ConfigError(f"{spec.method} needs {{soft}} slots in the template")
    counts = slot_counts(model, setup.soft_slots)
    embedding = model.net.get_input_embeddings().weight.numpy()
    how = getattr(spec, "init", "vocab")
    rows = {}
    for seg in sorted(setup.soft_slots, key=lambda s: s.slot):
        text_ids = model.tokenizer.encode_text(seg.init_text) if seg.init_text else None
        rows[seg.slot] = init.soft_rows(rng, embedding, counts[seg.slot], how, text_ids)
    encoder = getattr(spec, "encoder", None) if spec.method == "p_tuning" else None
    width = getattr(spec, "encoder_hidden", 0)
    soft = SoftPrompts(counts, model.hidden_size, encoder, width, rows, rng)
    config = {"soft": soft.config(), "encoder_hidden": width}
    handle = model.derive(soft=soft, method=spec.method, method_config=config)
    return handle, bind(soft, soft_entries(config))


def from_state(model: PaddleModel, config: dict[str, Any], state: dict[str, np.ndarray]
               ) -> PaddleModel:
    """A handle with soft prompts rebuilt from a saved config and canonical state."""
    soft_cfg = config["soft"]
    counts = {int(k): int(v) for k, v in soft_cfg["counts"].items()}
    rng = np.random.default_rng(0)
    hidden = model.hidden_size
    rows = {s: np.zeros((n, hidden), np.float32) for s, n in counts.items()}
    width = int(config.get("encoder_hidden") or 1)
    soft = SoftPrompts(counts, hidden, soft_cfg.get("encoder"), width, rows, rng)
    load_state(bind(soft, soft_entries(config)), state)
    soft.eval()
    return model.derive(soft=soft, method="p_tuning" if soft_cfg.get("encoder") else
                        "prompt_tuning", method_config=dict(config))
