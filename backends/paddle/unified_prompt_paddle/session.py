"""PaddleTrainSession: forward/backward, clipping and AdamW steps for the core's loop.

paddle.optimizer.AdamW decays weights decoupled (p *= 1 - lr * wd, then the Adam step with
bias correction), as torch.optim.AdamW does; its epsilon placement is algebraically the
same. Clipping is done here with torch's formula (coef = max / (norm + 1e-6), at most 1),
so the returned pre-clip norm and the clipped step match the hf backend's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.backend import ModelKind, TrainItem, TrainSession, TrainSetup
from unified_prompt.errors import CapabilityError, UserInputError
from unified_prompt.objectives import CONTRASTIVE_CAUSAL_ONLY
from unified_prompt.untrusted import load_npz
from unified_prompt_paddle.handle import PaddleModel
from unified_prompt_paddle.losses import batch_loss
from unified_prompt_paddle.methods import module_for
from unified_prompt_paddle.methods.bindings import Bindings
from unified_prompt_paddle.runtime import paddle

_ACCUMULATORS = ("moment1_0", "moment2_0", "beta1_pow_acc_0", "beta2_pow_acc_0")


def attach_method(model: PaddleModel, setup: TrainSetup,
                  rng: np.random.Generator) -> tuple[PaddleModel, Bindings]:
    """The method's trainable parts on a derived handle (the core has checked the method)."""
    module = module_for(setup.method.method)
    assert module is not None
    return module.attach(model, setup, rng)


class PaddleTrainSession(TrainSession):
    def __init__(self, base: PaddleModel, setup: TrainSetup) -> None:
        objective = getattr(setup.method, "objective", None)
        if objective is not None and objective.name == "contrastive" \
                and base.kind == ModelKind.MASKED:
            raise CapabilityError(CONTRASTIVE_CAUSAL_ONLY)
        pd = paddle()
        pd.seed(setup.seed)
        self.setup = setup
        self.model, self.bindings = attach_method(base, setup, np.random.default_rng(setup.seed))
        self.params = [b.param for b in self.bindings.values()]
        for p in self.params:
            p.stop_gradient = False
        self.trainable_params = int(sum(int(np.prod(p.shape)) for p in self.params))
        extra = 0 if setup.method.method == "full" else self.trainable_params
        self.total_params = int(base.total_params) + extra
        world = setup.world
        self.world = world if world is not None and world.size > 1 else None
        if getattr(setup.method, "parallel", "ddp") == "fsdp":
            from unified_prompt_paddle.distributed import FSDP_REFUSAL

            raise CapabilityError(f"finetune.parallel fsdp: {FSDP_REFUSAL}")
        if self.world is not None:
            from unified_prompt_paddle.distributed import broadcast_params

            broadcast_params(self.params)
        self.optimizer = pd.optimizer.AdamW(
            learning_rate=setup.method.learning_rate, parameters=self.params,
            weight_decay=setup.method.weight_decay, beta1=0.9, beta2=0.999, epsilon=1e-8)
        self.model.train(True)

    # -- the loop's primitives -------------------------------------------------------
    def forward_backward(self, batch: Sequence[TrainItem], weight: float = 1.0) -> float:
        loss = batch_loss(self.model, self.setup, batch)
        (loss * weight).backward()
        return float(loss.numpy())

    def loss(self, batch: Sequence[TrainItem]) -> float:
        pd = paddle()
        training = self.model.net.training
        self.model.train(False)
        try:
            with pd.no_grad():
                return float(batch_loss(self.model, self.setup, batch).numpy())
        finally:
            self.model.train(training)

    def sync_gradients(self) -> None:
        if self.world is not None:
            from unified_prompt_paddle.distributed import sum_gradients

            sum_gradients(self.params)

    def optimizer_step(self, lr: float, max_grad_norm: float | None) -> float | None:
        pd = paddle()
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = 0.0
        if grads:
            with pd.no_grad():
                squares = pd.stack([(g * g).sum() for g in grads]).sum()
                norm = float(pd.sqrt(squares).numpy())
                if max_grad_norm is not None:
                    coef = min(1.0, max_grad_norm / (norm + 1e-6))
                    if coef < 1.0:
                        for g in grads:
                            g.scale_(coef)
        self.optimizer.set_lr(lr)
        self.optimizer.step()
        self.optimizer.clear_grad()
        return norm

    def train_mode(self, training: bool) -> None:
        self.model.train(training)

    # -- state -----------------------------------------------------------------------
    def trainable_state(self) -> dict[str, np.ndarray]:
        return {name: b.to_canonical() for name, b in self.bindings.items()}

    def load_trainable_state(self, state: dict[str, np.ndarray]) -> None:
        unknown = set(state) - set(self.bindings)
        if unknown:
            raise UserInputError(f"unexpected trainable state {sorted(unknown)[:3]} for "
                                 f"{self.setup.method.method}")
        for name, value in state.items():
            self.bindings[name].load(value)

    def save_checkpoint(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {f"param:{k}": v for k, v in self.trainable_state().items()}
        opt = self.optimizer.state_dict()
        for name, b in self.bindings.items():
            for acc in _ACCUMULATORS:
                value = opt.get(f"{b.param.name}_{acc}")
                if value is not None:
                    arrays[f"{acc}:{name}"] = np.asarray(value.numpy())
        np.savez(path / "session.npz", **arrays)

    def load_checkpoint(self, path: Path) -> None:
        path = Path(path)
        arrays = load_npz(path / "session.npz")
        self.load_trainable_state({k.split(":", 1)[1]: v for k, v in arrays.items()
                                   if k.startswith("param:")})
        state: dict[str, Any] = {}
        for name, b in self.bindings.items():
            for acc in _ACCUMULATORS:
                key = f"{acc}:{name}"
                if key in arrays:
                    state[f"{b.param.name}_{acc}"] = paddle().to_tensor(arrays[key])
        if state:
            self.optimizer.set_state_dict(state)

    def save_adapter(self, path: Path) -> None:
        from unified_prompt_paddle.adapters import save_adapter

        save_adapter(self.model, self.trainable_state(), Path(path))

    def close(self) -> None:
        self.optimizer.clear_grad()
