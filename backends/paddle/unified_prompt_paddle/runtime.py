"""The one place that imports paddle: lazily, once, on CPU in float32, with quiet logs.

Every other module calls `paddle()` / `paddlenlp()` inside functions, so importing the
backend costs nothing until a model is loaded.
"""

from __future__ import annotations

import logging
import os
import warnings
from functools import lru_cache
from types import ModuleType


def _amd_with_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            info = fh.read(1 << 16)
    except OSError:
        return False
    return "AuthenticAMD" in info and " avx2" in info


@lru_cache(maxsize=1)
def paddle() -> ModuleType:
    """paddle, set to CPU and float32 (parity with the hf backend needs fp32).

    paddle's CPU wheel ships an MKL (mklml) that takes a generic code path on AMD CPUs:
    its matmuls ran at a quarter of torch's speed on the project's AMD EPYC machines.
    MKL_DEBUG_CPU_TYPE=5 selects the AVX2 kernels (set only where the CPU has AVX2, and
    only if the user has not chosen); it must be set before paddle loads MKL.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("FLAGS_call_stack_level", "0")
    if _amd_with_avx2():
        os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import paddle as _paddle

    _paddle.set_device("cpu")
    _paddle.set_default_dtype("float32")
    set_threads(None)
    return _paddle


def set_threads(n: int | None) -> None:
    """CPU math threads: `n`, else one per core (torch's default; paddle's is 1)."""
    from paddle.base import core

    core.set_num_threads(int(n or os.cpu_count() or 1))


@lru_cache(maxsize=1)
def paddlenlp() -> ModuleType:
    """paddlenlp with its console logger turned down (it logs every weight load)."""
    paddle()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import paddlenlp as _paddlenlp
        from paddlenlp.utils.log import logger

    logger.set_level("ERROR")
    _use_current_swiglu(_paddlenlp)
    logging.getLogger("paddlenlp").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="paddlenlp")
    warnings.filterwarnings("ignore", message=".*swiglu.*")
    return _paddlenlp


def to_tensor(array, dtype: str | None = None):
    """A paddle tensor from a numpy array (no gradient)."""
    t = paddle().to_tensor(array, dtype=dtype)
    t.stop_gradient = True
    return t


def _use_current_swiglu(nlp: ModuleType) -> None:
    """paddlenlp 2.8's Llama calls paddle.incubate's swiglu, deprecated in paddle 3.3 (a
    warning every forward); paddle.nn.functional.swiglu is the same silu(x) * y."""
    import paddle as _paddle
    from paddlenlp.transformers.llama import modeling

    current = getattr(_paddle.nn.functional, "swiglu", None)
    if current is not None:
        modeling.swiglu = current
