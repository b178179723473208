"""The Hugging Face backend of unified-prompt (transformers + torch + peft).

Importing this package loads no framework: `unified_prompt_hf.backend.HFBackend` is read by
`unified-prompt backends` without torch; the heavy modules load on first use.

OpenMP threads that busy-wait make torch several times slower on a CPU shared with other
busy processes (measured 34 s -> 6 s per training step on 2 shared cores), so the passive
wait policy is the default here; it must be set before torch loads, and an explicit
OMP_WAIT_POLICY in the environment wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
