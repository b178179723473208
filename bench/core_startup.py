"""Start-up cost of the core: `import unified_prompt` and `unified-prompt --help`.

Targets (issue: core): import under 0.3 s, --help under 1 s, no framework imported.
Each is measured in fresh interpreters, repeated; the bare interpreter start is measured
in the same run and printed beside it, so the difference is ours.

    .venv/bin/python bench/core_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def wall(cmd: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main(repeats: int = 15) -> None:
    py = sys.executable
    bare = wall([py, "-c", "pass"], repeats)
    imp = wall([py, "-c", "import unified_prompt"], repeats)
    helped = wall([py, "-m", "unified_prompt.cli", "--help"], repeats)
    heavy = subprocess.run(
        [py, "-c", "import sys, unified_prompt; print(sorted(m for m in ('torch','paddle',"
         "'openai','numpy','pydantic','sklearn') if m in sys.modules))"],
        check=True, capture_output=True, text=True).stdout.strip()
    med = statistics.median
    print(f"python -c pass          median {med(bare):.3f}s")
    print(f"import unified_prompt   median {med(imp):.3f}s  (ours: {med(imp) - med(bare):+.3f}s;"
          f" target < 0.3 s) {'OK' if med(imp) < 0.3 else 'OVER'}")
    print(f"unified-prompt --help   median {med(helped):.3f}s  (target < 1 s) "
          f"{'OK' if med(helped) < 1.0 else 'OVER'}")
    print(f"heavy modules after import: {heavy}")


if __name__ == "__main__":
    main()
