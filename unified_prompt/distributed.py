"""Several processes, one run: the world a launched run lives in, decided by the core.

`torchrun` / `accelerate launch` (hf) and `paddle.distributed.launch` (paddle) start N
copies of `unified-prompt run`; each finds its rank in the launcher's environment and joins
a `World`, which its backend implements with the framework's collectives (torch.distributed,
paddle.distributed). The core decides everything else, once for every framework:

- training: every rank takes its share of each micro-batch, weighted by share / global
  batch, so the all-reduced SUM of gradients is the single-process mean gradient
  (`Trainer`); the spec's batch_size stays the global batch;
- evaluation: prompts are split across ranks and the scores gathered in order
  (`ShardedInference`), unless the model's forward is itself a collective (FSDP);
- the run directory: rank 0 alone writes; its decisions (resume, a finished run, an error)
  reach the others through `decide_on_main`.

A single process gets `SingleWorld`, and every path is then exactly the one-process code.
"""

from __future__ import annotations

import io
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from unified_prompt.errors import CapabilityError, UnifiedPromptError

if TYPE_CHECKING:
    import numpy as np

    from unified_prompt.backend import Backend, GenerationParams, Progress
    from unified_prompt.prompts.segments import Rendered
    from unified_prompt.prompts.verbalizer import WordScores

Launcher = Literal["torchrun", "paddle"]
T = TypeVar("T")

#: Seconds a collective waits for a silent peer before failing (a dead rank must not leave
#: the others hanging); override with this environment variable.
TIMEOUT_ENV = "UNIFIED_PROMPT_COLLECTIVE_TIMEOUT"
DEFAULT_TIMEOUT = 600.0


def collective_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV)
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        raise UnifiedPromptError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise UnifiedPromptError(f"{TIMEOUT_ENV} must be positive, got {raw}")
    return value


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a launched group, read from the launcher's environment."""

    launcher: Launcher
    rank: int
    size: int
    local_rank: int


def launch_from_env(env: dict[str, str] | None = None) -> Launch | None:
    """The launch this process belongs to, or None when it was started alone.

    torchrun and accelerate launch set RANK / WORLD_SIZE / LOCAL_RANK;
    paddle.distributed.launch sets PADDLE_TRAINER_ID / PADDLE_TRAINERS_NUM /
    PADDLE_LOCAL_RANK.
    """
    env = dict(os.environ) if env is None else env

    def number(key: str, default: int | None = None) -> int:
        raw = env.get(key)
        if raw is None or raw == "":
            if default is None:
                raise UnifiedPromptError(f"launcher environment: {key} is not set")
            return default
        try:
            return int(raw)
        except ValueError:
            raise UnifiedPromptError(f"launcher environment: {key}={raw!r} is not an "
                                     "integer") from None

    if "PADDLE_TRAINERS_NUM" in env and "PADDLE_TRAINER_ID" in env:
        rank = number("PADDLE_TRAINER_ID")
        return Launch("paddle", rank, number("PADDLE_TRAINERS_NUM"),
                      number("PADDLE_LOCAL_RANK", number("PADDLE_RANK_IN_NODE", rank)))
    if "WORLD_SIZE" in env and "RANK" in env:
        rank = number("RANK")
        return Launch("torchrun", rank, number("WORLD_SIZE"), number("LOCAL_RANK", rank))
    return None


def is_main_process() -> bool:
    """Rank 0 of a launch, or a process started alone (who prints, who writes)."""
    launch = launch_from_env()
    return launch is None or launch.rank == 0


# -- the world -----------------------------------------------------------------------
class World(ABC):
    """The processes of one run and the collectives between them.

    A backend implements the three array collectives with its framework (gloo on CPU,
    NCCL on GPU, paddle's collectives); everything built on them here (bytes, JSON,
    arrays of different lengths, decisions) is the same for every framework. Every rank
    must make the same calls in the same order.
    """

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @abstractmethod
    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        """The element-wise sum of `array` over all ranks (same shape and dtype everywhere)."""

    @abstractmethod
    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        """Every rank's `array` (same shape and dtype everywhere), in rank order."""

    @abstractmethod
    def broadcast(self, array: np.ndarray, src: int = 0) -> np.ndarray:
        """Rank `src`'s `array` on every rank (the others pass one of the same shape)."""

    def barrier(self) -> None:
        import numpy as np

        self.all_reduce(np.zeros(1))

    def close(self) -> None:  # noqa: B027 - optional hook
        """Leave the group (the process group this world created)."""

    # -- built on the three collectives ---------------------------------------------
    def all_gather_bytes(self, data: bytes) -> list[bytes]:
        import numpy as np

        sizes = [int(s[0]) for s in self.all_gather(np.array([len(data)], dtype=np.int64))]
        buf = np.zeros(max(sizes) or 1, dtype=np.uint8)
        buf[:len(data)] = np.frombuffer(data, dtype=np.uint8)
        return [part[:n].tobytes() for part, n in zip(self.all_gather(buf), sizes, strict=True)]

    def broadcast_bytes(self, data: bytes | None, src: int = 0) -> bytes:
        import numpy as np

        mine = self.rank == src
        if mine and data is None:
            raise ValueError("the source rank must pass the bytes it broadcasts")
        size = int(self.broadcast(np.array([len(data) if mine else 0], dtype=np.int64),
                                  src)[0])
        buf = np.frombuffer(data, dtype=np.uint8).copy() if mine else np.zeros(size, np.uint8)
        return self.broadcast(buf, src).tobytes() if size else b""

    def gather_arrays(self, array: np.ndarray) -> list[np.ndarray]:
        """Every rank's array, whatever its shape (saved with numpy's format, no pickle)."""
        import numpy as np

        out = io.BytesIO()
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)
        return [np.load(io.BytesIO(b), allow_pickle=False)
                for b in self.all_gather_bytes(out.getvalue())]

    def gather_json(self, value: Any) -> list[Any]:
        """Every rank's JSON-able value, in rank order."""
        data = json.dumps(value, ensure_ascii=False).encode("utf-8")
        return [json.loads(b.decode("utf-8")) for b in self.all_gather_bytes(data)]

    def broadcast_json(self, value: Any, src: int = 0) -> Any:
        data = json.dumps(value, ensure_ascii=False).encode("utf-8") if self.rank == src \
            else None
        return json.loads(self.broadcast_bytes(data, src).decode("utf-8"))

    def any(self, flag: bool) -> bool:
        """True on every rank when `flag` is True on any rank (a cancel, a stop)."""
        import numpy as np

        return bool(self.all_reduce(np.array([1.0 if flag else 0.0]))[0] > 0)


class SingleWorld(World):
    """One process: every collective is the identity, so the one-process code runs as is."""

    rank = 0
    size = 1

    def all_reduce(self, array: np.ndarray) -> np.ndarray:
        return array.copy()

    def all_gather(self, array: np.ndarray) -> list[np.ndarray]:
        return [array.copy()]

    def broadcast(self, array: np.ndarray, src: int = 0) -> np.ndarray:
        return array.copy()


def open_world(backend: Backend, parallel: str = "ddp") -> World:
    """This process's world: SingleWorld when started alone (or in a group of one), else
    the backend's, joined through the launcher's environment."""
    launch = launch_from_env()
    if launch is None or launch.size <= 1:
        return SingleWorld()
    caps = backend.capabilities
    if not caps.parallel:
        raise CapabilityError(f"backend {backend.name!r} cannot run in several processes "
                              f"(started by {launch.launcher} with {launch.size})")
    return backend.join_world(launch)


def check_parallel(backend: Backend, parallel: str, world: World) -> None:
    """finetune.parallel must be one the backend trains with: fsdp always (no silent
    fallback to replicated weights), ddp whenever there is more than one process."""
    caps = backend.capabilities
    if parallel in caps.parallel or (parallel == "ddp" and world.size == 1):
        return
    have = ", ".join(sorted(caps.parallel)) or "nothing (one process only)"
    why = [n for n in caps.notes if n.startswith(f"finetune.parallel {parallel}")]
    raise CapabilityError(f"backend {backend.name!r} cannot train with finetune.parallel "
                          f"{parallel!r} (it can: {have})" + (f"; {why[0]}" if why else ""))


# -- decisions made on rank 0 ------------------------------------------------------------
class PeerError(UnifiedPromptError):
    """Raised on the other ranks when rank 0 failed at something they wait for; carries
    rank 0's message and exit code, so every rank stops the same way."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def decide_on_main(world: World, decide: Callable[[], T]) -> T:
    """`decide()` run on rank 0 (it may write the run directory), its JSON-able result
    on every rank; an exception there is raised on every rank (a PeerError elsewhere)."""
    if world.size == 1:
        return decide()
    if world.is_main:
        try:
            value = decide()
        except BaseException as exc:
            world.broadcast_json({"error": f"{exc}" or type(exc).__name__,
                                  "exit_code": int(getattr(exc, "exit_code", 1))})
            raise
        world.broadcast_json({"value": value})
        return value
    reply = world.broadcast_json(None)
    if "error" in reply:
        raise PeerError(f"rank 0: {reply['error']}", reply["exit_code"])
    return reply["value"]


# -- sharding --------------------------------------------------------------------------
def shard_bounds(n: int, rank: int, size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous share of n items; shares differ by at most one."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def local_micro_batches(micro: Sequence[Sequence[int]], world: World
                        ) -> list[tuple[list[int], float]]:
    """This rank's items of each micro-batch of one optimizer step, with the loss weight
    that makes the all-reduced sum of gradients the mean over the whole step.

    A rank whose share of a micro-batch is empty runs its first item at weight 0, so every
    rank makes the same forward/backward calls (a sharded model's forward is a collective).
    """
    n = sum(len(m) for m in micro)
    out: list[tuple[list[int], float]] = []
    for idx in micro:
        idx = list(idx)
        if world.size == 1:
            out.append((idx, len(idx) / n))
            continue
        start, stop = shard_bounds(len(idx), world.rank, world.size)
        mine = idx[start:stop]
        out.append((mine, len(mine) / n) if mine else (idx[:1], 0.0))
    return out


class ShardedInference:
    """A backend seen through a world: `score` and `generate` split the prompts across
    ranks and gather the results in order, so each rank scores 1/N of an evaluation and
    all ranks get every score. Everything else is the backend's own.

    A model whose forward is a collective (weights sharded with FSDP) is run on every
    prompt on every rank instead: all ranks must then make the same forward calls.
    """

    def __init__(self, backend: Backend, world: World) -> None:
        self._backend = backend
        self._world = world

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def _part(self, model: Any, n: int) -> tuple[int, int] | None:
        world = self._world
        if world.size == 1 or self._backend.collective_forward(model):
            return None
        return shard_bounds(n, world.rank, world.size)

    def score(self, model: Any, prompts: Sequence[Rendered], words: Sequence[str], *,
              batch_size: int = 16, progress: Progress | None = None) -> WordScores:
        import numpy as np

        from unified_prompt.prompts.verbalizer import WordScores

        part = self._part(model, len(prompts))
        if part is None:
            return self._backend.score(model, prompts, words, batch_size=batch_size,
                                       progress=progress)
        start, stop = part
        if stop > start:
            local = self._backend.score(model, prompts[start:stop], words,
                                        batch_size=batch_size, progress=progress)
            lp = np.asarray(local.logprob, dtype=np.float64)
            nt = np.asarray(local.n_tokens, dtype=np.int64)
            exact = local.exact
        else:
            lp = np.zeros((0, len(words)))
            nt = np.zeros((0, len(words)), dtype=np.int64)
            exact = True
        world = self._world
        return WordScores(np.concatenate(world.gather_arrays(lp)),
                          np.concatenate(world.gather_arrays(nt)),
                          exact=all(world.gather_json(bool(exact))))

    def generate(self, model: Any, prompts: Sequence[Rendered], params: GenerationParams, *,
                 batch_size: int = 16, progress: Progress | None = None) -> list[str]:
        part = self._part(model, len(prompts))
        if part is None:
            return self._backend.generate(model, prompts, params, batch_size=batch_size,
                                          progress=progress)
        start, stop = part
        local = self._backend.generate(model, prompts[start:stop], params,
                                       batch_size=batch_size, progress=progress) \
            if stop > start else []
        return [text for texts in self._world.gather_json(list(local)) for text in texts]
