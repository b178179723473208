"""paddle.distributed under the core's World (gloo on CPU, the only device this backend
runs on), and gradient sums for data parallel.

Sharded training (`finetune.parallel: fsdp`) is refused: paddle's group-sharded stages
(`paddle.distributed.sharding.group_sharded_parallel`, levels os / os_g / p_g_os) assert
"group_sharded_parallel only support gpu, xpu and custom_device now" on CPU.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unified_prompt.distributed import Launch, World, collective_timeout
from unified_prompt.errors import CapabilityError
from unified_prompt_paddle.runtime import paddle

FSDP_REFUSAL = ("paddle's group-sharded stages refuse the CPU ('group_sharded_parallel only "
                "support gpu, xpu and custom_device now') and this backend runs on the CPU: "
                "use finetune.parallel ddp, or the hf backend for fsdp")


def launch_command(nproc: int, args: Sequence[str]) -> list[str]:
    """paddle's launcher runs a script file, so the `unified-prompt` console script; its
    per-rank logs go to a temporary folder (a folder inside --out would make rank 0 find
    the run directory taken)."""
    script = Path(sys.executable).with_name("unified-prompt")
    found = str(script) if script.exists() else shutil.which("unified-prompt")
    if found is None:
        raise CapabilityError("--nproc on paddle needs the unified-prompt command on PATH")
    logs = tempfile.mkdtemp(prefix="unified-prompt-paddle-launch-")
    return [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(nproc),
            "--log_dir", logs, found, *args]


class PaddleWorld(World):
    def __init__(self, launch: Launch) -> None:
        if launch.launcher != "paddle":
            raise CapabilityError(
                f"the paddle backend runs under paddle.distributed.launch; this process was "
                f"started by {launch.launcher} (use python -m paddle.distributed.launch "
                "--nproc_per_node N $(command -v unified-prompt) run ...)")
        os.environ.setdefault("PADDLE_PG_TIMEOUT", str(int(collective_timeout() * 1000)))
        pd = paddle()
        self._dist = pd.distributed
        self._dist.init_parallel_env()
        self.rank = self._dist.get_rank()
        self.size = self._dist.get_world_size()
        if (self.rank, self.size) != (launch.rank, launch.size):
            raise CapabilityError(f"process group rank {self.rank}/{self.size} differs from "
                                  f"the launcher's {launch.rank}/{launch.size}")

    def _tensor(self, array: np.ndarray) -> Any:
        return paddle().to_tensor(np.ascontiguousarray(array).copy())

    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        t = self._tensor(array)
        self._dist.all_reduce(t)
        return t.numpy()

    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        out: list[Any] = []
        self._dist.all_gather(out, self._tensor(array))
        return [o.numpy() for o in out]

    def broadcast(self, array: np.ndarray, src: int = 0) -> np.ndarray:
        t = self._tensor(array)
        self._dist.broadcast(t, src=src)
        return t.numpy()

    def barrier(self) -> None:
        self._dist.barrier()


def sum_gradients(params: Iterable[Any]) -> None:
    """Each parameter's gradient summed over the ranks, as one flat all-reduce. Which
    parameters have gradients is the same on every rank (same template, same method)."""
    pd = paddle()
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    with pd.no_grad():
        flat = pd.concat([g.reshape([-1]) for g in grads])
        pd.distributed.all_reduce(flat)
        start = 0
        for g in grads:
            n = int(np.prod(g.shape))
            g.set_value(flat[start:start + n].reshape(g.shape))
            start += n


def broadcast_params(params: Iterable[Any]) -> None:
    """Rank 0's values everywhere: every rank starts from the same weights."""
    pd = paddle()
    with pd.no_grad():
        for p in params:
            pd.distributed.broadcast(p, src=0)
