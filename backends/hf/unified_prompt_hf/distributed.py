"""torch.distributed under the core's World: gloo on CPU, NCCL (+ gloo for host arrays) on
GPU; gradient sums for data parallel; FSDP2 (`fully_shard`) for full fine-tuning.

The core decides the sharding of batches and evaluations; this module only runs the
collectives. Every collective is given the core's timeout, so a dead peer fails the
others instead of hanging them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from unified_prompt.distributed import Launch, World, collective_timeout
from unified_prompt.errors import CapabilityError

#: Elements per all-reduce when summing gradients (64 MiB of fp32).
BUCKET = 1 << 24


def launch_command(nproc: int, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", str(nproc), "-m", "unified_prompt.cli", *args]


class TorchWorld(World):
    """The default process group, created from the launcher's environment (or reused when
    the program already made one, e.g. with accelerate)."""

    def __init__(self, launch: Launch, device: str) -> None:
        if launch.launcher != "torchrun":
            raise CapabilityError(
                f"the hf backend runs under torchrun or accelerate launch; this process was "
                f"started by {launch.launcher} (use torchrun --nproc_per_node N -m "
                "unified_prompt.cli run ...)")
        gpu = device != "cpu" and torch.cuda.is_available()
        if gpu:
            torch.cuda.set_device(launch.local_rank)
        self._owner = not dist.is_initialized()
        if self._owner:
            dist.init_process_group(backend="cpu:gloo,cuda:nccl" if gpu else "gloo",
                                    timeout=timedelta(seconds=collective_timeout()))
        self.rank = dist.get_rank()
        self.size = dist.get_world_size()
        if (self.rank, self.size) != (launch.rank, launch.size):
            raise CapabilityError(f"process group rank {self.rank}/{self.size} differs from "
                                  f"the launcher's {launch.rank}/{launch.size}")

    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(array).copy())
        dist.all_reduce(t)
        return t.numpy()

    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        t = torch.from_numpy(np.ascontiguousarray(array).copy())
        out = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(out, t)
        return [o.numpy() for o in out]

    def broadcast(self, array: np.ndarray, src: int = 0) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(array).copy())
        dist.broadcast(t, src)
        return t.numpy()

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if self._owner and dist.is_initialized():
            dist.destroy_process_group()
            self._owner = False


def sum_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Every parameter's gradient summed over the ranks, in buckets (a missing gradient
    counts as zero, and every rank then holds one)."""
    params = list(params)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    bucket: list[torch.nn.Parameter] = []
    size = 0
    for p in params:
        bucket.append(p)
        size += p.numel()
        if size >= BUCKET:
            _reduce(bucket)
            bucket, size = [], 0
    if bucket:
        _reduce(bucket)


def _reduce(params: list[torch.nn.Parameter]) -> None:
    by_dtype: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in params:
        assert p.grad is not None
        by_dtype.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    for grads in by_dtype.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        start = 0
        for g in grads:
            g.copy_(flat[start:start + g.numel()].view_as(g))
            start += g.numel()


def broadcast_params(params: Iterable[torch.nn.Parameter]) -> None:
    """Rank 0's values everywhere: every rank starts from the same weights."""
    with torch.no_grad():
        for p in params:
            dist.broadcast(p.data, 0)


# -- FSDP2 --------------------------------------------------------------------------------
def fully_shard_model(module: torch.nn.Module, device: torch.device) -> None:
    """Shard each block the model declares unsplittable (`_no_split_modules`: decoder
    layers), then the rest; gradients are reduce-scattered as plain sums (the core's loss
    weights already make the sum the mean)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import FSDPModule, fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    blocks = set(getattr(module, "_no_split_modules", None) or ())
    for sub in module.modules():
        if sub is not module and type(sub).__name__ in blocks:
            fully_shard(sub, mesh=mesh)
    fully_shard(module, mesh=mesh)
    for sub in module.modules():
        if isinstance(sub, FSDPModule):
            sub.set_gradient_divide_factor(1.0)
            sub.set_force_sum_reduction_for_comms(True)  # gloo has no PREMUL_SUM


def reshard(module: torch.nn.Module) -> None:
    """Back to sharded parameters (a forward without backward leaves the root gathered)."""
    from torch.distributed.fsdp import FSDPModule

    for sub in module.modules():
        if isinstance(sub, FSDPModule):
            sub.reshard()


def is_sharded(t: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full_tensor(p: torch.Tensor) -> torch.Tensor:
    """The whole parameter (a collective for a sharded one: every rank must call)."""
    return p.full_tensor() if is_sharded(p) else p


def load_full(p: torch.Tensor, value: torch.Tensor) -> None:
    """Copy a whole tensor into a (sharded) parameter: each rank keeps its own shard."""
    from torch.distributed.tensor import distribute_tensor

    with torch.no_grad():
        if is_sharded(p):
            local = distribute_tensor(value.detach().to(p.device, p.dtype), p.device_mesh,
                                      p.placements, src_data_rank=None).to_local()
            p.to_local().copy_(local)
        else:
            p.copy_(value.to(device=p.device, dtype=p.dtype))


def full_optimizer_state(module: torch.nn.Module, optimizer: Any) -> dict[str, Any]:
    """The optimizer's whole state keyed by parameter name, on rank 0 (empty elsewhere)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(module, optimizer, options=StateDictOptions(
        full_state_dict=True, cpu_offload=True))


def load_full_optimizer_state(module: torch.nn.Module, optimizer: Any,
                              state: dict[str, Any]) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(module, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True))


def full_model_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's whole state dict on rank 0, on the CPU (empty elsewhere)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True,
                                                                 cpu_offload=True))
