"""Why the paddle backend never calls `F.log_softmax` over the vocabulary on CPU.

Times paddle's own `F.log_softmax` against `x - logsumexp(x)` (what the backend's head
uses) on the same (batch, vocab) float32 tensor, and checks they agree.

    .venv/bin/python bench/paddle_log_softmax.py [--batch 8] [--vocab 49152] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=49152, help="SmolLM2's vocabulary size")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import paddle
    from paddle.nn import functional

    paddle.seed(0)
    x = paddle.randn([args.batch, args.vocab], dtype="float32")

    def timed(fn) -> float:
        fn()  # warm-up
        start = time.perf_counter()
        for _ in range(args.repeats):
            fn()
        return (time.perf_counter() - start) / args.repeats

    builtin = timed(lambda: functional.log_softmax(x, axis=-1))
    ours = timed(lambda: x - paddle.logsumexp(x, axis=-1, keepdim=True))
    diff = float((functional.log_softmax(x, axis=-1) - (x - paddle.logsumexp(x, axis=-1, keepdim=True)))
                 .abs().max())
    print(f"paddle {paddle.__version__}, ({args.batch}, {args.vocab}) float32, CPU")
    print(f"F.log_softmax       {builtin * 1e3:9.2f} ms")
    print(f"x - logsumexp(x)    {ours * 1e3:9.2f} ms")
    print(f"ratio {builtin / ours:.0f}x; max |difference| {diff:.2e}")


if __name__ == "__main__":
    main()
