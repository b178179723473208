"""HFTrainSession: forward/backward, AdamW steps, state and checkpoints for one method.

The core's Trainer owns the loop (batches, schedule, accumulation, evaluation, early
stopping); this class owns only tensors. Parameters live under the canonical names of
`unified_prompt.backend.TrainSession.trainable_state`, so state, checkpoints and the
optimizer all iterate one ordered dict.

In a world of several processes: ddp keeps whole trained weights on every rank (rank 0's
initial values broadcast) and sums gradients in `sync_gradients`; fsdp (method full)
shards the model with FSDP2, which sums gradients during backward, and gathers whole
weights for trainable_state, checkpoints and the adapter (rank 0 writes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from unified_prompt.backend import TrainItem, TrainSession, TrainSetup
from unified_prompt.errors import CapabilityError, UserInputError
from unified_prompt.objectives import CONTRASTIVE_CAUSAL_ONLY
from unified_prompt.untrusted import read_json_object
from unified_prompt_hf.handle import HFModel
from unified_prompt_hf.losses import batch_loss
from unified_prompt_hf.methods import build_method

STATE_FILE = "trainable.safetensors"
OPTIMIZER_FILE = "optimizer.pt"  # tensors and numbers only: loaded with weights_only=True
RNG_FILE = "rng.safetensors"  # generator states as tensors; Python's in the metadata
OLD_RNG_FILE = "rng.pt"  # written before RNG_FILE; read with weights_only=True
META_FILE = "session.json"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on GPUs (precision auto/bf16) or when asked for; None = as loaded."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class HFTrainSession(TrainSession):
    def __init__(self, base: HFModel, setup: TrainSetup) -> None:
        self.setup = setup
        self.spec = setup.method
        objective = getattr(self.spec, "objective", None)
        if objective is not None and objective.name == "contrastive" and not base.causal:
            raise CapabilityError(CONTRASTIVE_CAUSAL_ONLY)
        torch.manual_seed(setup.seed)
        random.seed(setup.seed)
        self.state = build_method(base, setup)
        self.model: HFModel = self.state.handle
        self.model.autocast = autocast_dtype(self.spec.precision, self.model.device)
        self.params = self.state.params
        self.world = setup.world if setup.world is not None and setup.world.size > 1 else None
        self._join_world(getattr(self.spec, "parallel", "ddp"))
        for p in self.params.values():
            p.requires_grad_(True)
        self.trainable_params = int(sum(p.numel() for p in self.params.values()))
        base_total = int(base.shared.get("total_params") or 0)
        self.total_params = base_total + (0 if self.spec.method == "full"
                                          else self.trainable_params)
        fused = self.model.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(list(self.params.values()),
                                           lr=self.spec.learning_rate,
                                           weight_decay=self.spec.weight_decay,
                                           **({"fused": True} if fused else {}))
        self._checkpointing = False
        if self.spec.gradient_checkpointing:
            self._enable_checkpointing()
        self.train_mode(True)

    def _join_world(self, parallel: str) -> None:
        if parallel == "fsdp" and self.spec.method != "full":
            raise CapabilityError(
                f"finetune.parallel fsdp shards full fine-tuning (method full); "
                f"{self.spec.method} trains few weights: use finetune.parallel ddp")
        if self.world is None:
            return
        from unified_prompt_hf import distributed

        if parallel == "fsdp":
            distributed.fully_shard_model(self.model.module, self.model.device)
            self.params = dict(self.model.module.named_parameters())
            self.model = self.model.derive(collective=True, autocast=self.model.autocast)
            self.state.handle = self.model
            self.sharded = True
        else:
            distributed.broadcast_params(self.params.values())

    def sync_gradients(self) -> None:
        if self.world is None or self.sharded:  # FSDP summed them during backward
            return
        from unified_prompt_hf.distributed import sum_gradients

        sum_gradients(self.params.values())

    def _reshard(self) -> None:
        if self.sharded:
            from unified_prompt_hf.distributed import reshard

            reshard(self.model.module)

    # -- modes -----------------------------------------------------------------------
    def _enable_checkpointing(self) -> None:
        module = self.model.module
        if not getattr(module, "supports_gradient_checkpointing", False):
            return
        kwargs = {"use_reentrant": False}
        if hasattr(module, "activation_checkpointing_enable"):  # transformers >= 5.20
            module.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self._checkpointing = True

    def train_mode(self, training: bool) -> None:
        self._reshard()
        for mod in self.model.trained_modules():
            mod.train(training)

    # -- steps -----------------------------------------------------------------------
    def _loss(self, batch: Sequence[TrainItem]) -> torch.Tensor:
        if not batch:
            raise UserInputError("an empty training batch")
        return batch_loss(self.model, batch, self.setup, naive=self._checkpointing)

    def forward_backward(self, batch: Sequence[TrainItem], weight: float = 1.0) -> float:
        loss = self._loss(batch)
        (loss * weight).backward()
        return float(loss.detach())

    def loss(self, batch: Sequence[TrainItem]) -> float:
        with torch.no_grad(), self.model.evaluating():
            return float(self._loss(batch))

    def optimizer_step(self, lr: float, max_grad_norm: float | None) -> float | None:
        params = [p for p in self.params.values() if p.grad is not None]
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if not params:
            self.optimizer.zero_grad(set_to_none=True)
            return 0.0
        limit = max_grad_norm if max_grad_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, limit)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.sharded:
            from unified_prompt_hf.distributed import full_tensor

            norm = full_tensor(norm)
        return float(norm)

    # -- state -----------------------------------------------------------------------
    def trainable_state(self) -> dict[str, np.ndarray]:
        if self.sharded:
            from unified_prompt_hf.distributed import full_tensor

            self._reshard()
            return {k: full_tensor(p).detach().float().cpu().numpy().copy()
                    for k, p in self.params.items()}
        return {k: p.detach().float().cpu().numpy().copy() for k, p in self.params.items()}

    def load_trainable_state(self, state: dict[str, np.ndarray]) -> None:
        unknown = sorted(set(state) - set(self.params))
        missing = sorted(set(self.params) - set(state))
        if unknown or missing:
            raise UserInputError(f"trainable state does not match this {self.spec.method} "
                                 f"session (unexpected: {unknown[:3]}, missing: {missing[:3]})")
        from unified_prompt_hf.distributed import load_full

        self._reshard()
        for k, p in self.params.items():
            value = torch.as_tensor(np.asarray(state[k]))
            if tuple(value.shape) != tuple(p.shape):
                raise UserInputError(f"trainable state {k!r} has shape {tuple(value.shape)}"
                                     f", the model needs {tuple(p.shape)}")
            load_full(p, value)

    def _optimizer_state(self) -> dict:
        """Keyed by parameter name when sharded (FSDP's whole state, on rank 0), else by
        index (torch's own state_dict)."""
        if self.sharded:
            from unified_prompt_hf.distributed import full_optimizer_state

            return full_optimizer_state(self.model.module, self.optimizer)
        return self.optimizer.state_dict()

    def save_checkpoint(self, path: Path) -> None:
        from safetensors.torch import save_file

        from unified_prompt_hf.distributed import full_tensor

        self._reshard()
        weights = {k: full_tensor(p).detach().cpu().contiguous() for k, p in self.params.items()}
        optimizer = self._optimizer_state()
        if self.world is not None and not self.world.is_main:
            return  # the collectives above gathered the state for rank 0, which writes it
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file(weights, str(path / STATE_FILE))
        torch.save(optimizer, path / OPTIMIZER_FILE)
        save_rng_state(path / RNG_FILE)
        (path / META_FILE).write_text(json.dumps({"method": self.spec.method,
                                                  "names": list(self.params),
                                                  "optimizer_keys": "names" if self.sharded
                                                  else "index"}),
                                      encoding="utf-8")

    def load_checkpoint(self, path: Path) -> None:
        """Every file is read as data only (safetensors, JSON, torch.load weights_only), and
        a damaged one is a UserInputError naming it: run directories may come from others."""
        from safetensors.torch import load_file

        path = Path(path)
        meta = read_json_object(path / META_FILE)
        if meta.get("method") != self.spec.method:
            raise UserInputError(f"{path}: checkpoint of method {meta.get('method')!r}, "
                                 f"this session trains {self.spec.method!r}")
        with damaged_file(path / STATE_FILE):
            weights = load_file(str(path / STATE_FILE))
        self.load_trainable_state({k: v.float().numpy() for k, v in weights.items()})
        from unified_prompt_hf.distributed import load_full, load_full_optimizer_state

        for k, p in self.params.items():  # exact dtype round trip (bf16 params, say)
            load_full(p, weights[k])
        with damaged_file(path / OPTIMIZER_FILE):
            optimizer = torch.load(path / OPTIMIZER_FILE, weights_only=True)
        named = meta.get("optimizer_keys") == "names"
        with damaged_file(path / OPTIMIZER_FILE):
            if self.sharded:
                load_full_optimizer_state(self.model.module, self.optimizer,
                                          optimizer if named else _by_name(optimizer,
                                                                           list(self.params)))
            else:
                self.optimizer.load_state_dict(_by_index(optimizer, list(self.params)) if named
                                               else optimizer)
        load_rng_state(path)

    def save_adapter(self, path: Path) -> None:
        if self.sharded:  # method full (the only one fsdp shards)
            from unified_prompt_hf.distributed import full_model_state

            self._reshard()
            weights = full_model_state(self.model.module)
            if self.world is not None and self.world.is_main:
                Path(path).mkdir(parents=True, exist_ok=True)
                self.state.save_adapter(Path(path), state_dict=weights)  # type: ignore[call-arg]
            return
        Path(path).mkdir(parents=True, exist_ok=True)
        self.state.save_adapter(Path(path))

    def close(self) -> None:
        if self._checkpointing:
            module = self.model.module
            off = getattr(module, "activation_checkpointing_disable", None) \
                or module.gradient_checkpointing_disable
            off()
            self._checkpointing = False
        self.state.close()
        self.optimizer.state.clear()


# -- checkpoint files read as data ---------------------------------------------------------
@contextmanager
def damaged_file(path: Path) -> Iterator[None]:
    """A file that fails to load is a UserInputError naming it (exit 2), not a traceback."""
    try:
        yield
    except UserInputError:
        raise
    except FileNotFoundError:
        raise UserInputError(f"{path}: missing from the checkpoint") from None
    except Exception as exc:  # safetensors, torch's unpickler and the optimizer raise many kinds
        raise UserInputError(f"{path}: damaged or not a checkpoint file ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None


def save_rng_state(path: Path) -> None:
    from safetensors.torch import save_file

    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors |= {f"cuda.{i}": t for i, t in enumerate(torch.cuda.get_rng_state_all())}
    version, state, gauss = random.getstate()
    save_file(tensors, str(path),
              metadata={"python": json.dumps({"version": version, "state": list(state),
                                              "gauss": gauss})})


def load_rng_state(folder: Path) -> None:
    """Restore torch's, CUDA's and Python's generators from RNG_FILE (or an older OLD_RNG_FILE,
    unpickled with weights_only=True, which builds tensors and plain data only)."""
    from safetensors import safe_open

    path = folder / RNG_FILE
    if not path.exists() and (folder / OLD_RNG_FILE).exists():
        path = folder / OLD_RNG_FILE
        with damaged_file(path):
            rng = torch.load(path, weights_only=True)
            torch.set_rng_state(rng["torch"])
            random.setstate(rng["python"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
        return
    with damaged_file(path), safe_open(str(path), framework="pt") as fh:
        python = json.loads((fh.metadata() or {})["python"])
        cuda = sorted((k for k in fh.keys() if k.startswith("cuda.")),  # noqa: SIM118
                      key=lambda k: int(k.split(".")[1]))
        torch.set_rng_state(fh.get_tensor("torch"))
        random.setstate((int(python["version"]), tuple(int(x) for x in python["state"]),
                         python["gauss"]))
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([fh.get_tensor(k) for k in cuda])


def _by_name(state: dict, names: list[str]) -> dict:
    """torch's index-keyed optimizer state keyed by parameter name (FSDP's full form), so a
    checkpoint from one process resumes sharded, and the reverse below."""
    return {"state": {names[int(i)]: v for i, v in state["state"].items()},
            "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]}
                             for g in state["param_groups"]]}


def _by_index(state: dict, names: list[str]) -> dict:
    index = {n: i for i, n in enumerate(names)}
    return {"state": {index[n]: v for n, v in state["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]}
                             for g in state["param_groups"]]}
