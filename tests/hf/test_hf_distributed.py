"""Data parallel and FSDP2 on the hf backend: 2 processes (torchrun, gloo) against 1.

One torchrun launch trains LoRA and prompt tuning for 10 steps and full fine-tuning with
FSDP2 for 5 steps (dist_worker.py); the same cases run here in one process. The CLI under
the launcher (kill -9 of a rank, then --resume) is in test_hf_distributed_cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dist_worker import CASES, run_case

from unified_prompt.distributed import SingleWorld

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def torchrun(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0", "OMP_NUM_THREADS": "1",
           "UNIFIED_PROMPT_COLLECTIVE_TIMEOUT": "300"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "two.json"
    proc = torchrun(str(HERE / "dist_worker.py"), str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("case,rtol", [("lora", 1e-5), ("prompt_tuning", 1e-5),
                                       ("fsdp_full", 1e-4)])
def test_two_processes_follow_the_one_process_trajectory(backend, llama, two_processes,
                                                         case, rtol, tmp_path):
    one = run_case(backend, llama, SingleWorld(), case, tmp_path)
    two = two_processes[case]
    assert two_processes["processes"] == 2
    assert len(two["losses"]) == CASES[case]["max_steps"]
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=rtol)
    np.testing.assert_allclose(two["grad_norms"], one["grad_norms"], rtol=rtol)
    assert two["predictions"] == one["predictions"]
    np.testing.assert_allclose(two["label_scores"], one["label_scores"], rtol=rtol, atol=1e-5)
    assert two["state_norm"] == pytest.approx(one["state_norm"], rel=rtol)
    assert one["losses"][0] != one["losses"][-1]  # it trained
    if case == "fsdp_full":  # sharded checkpoints resume exactly; the saved model is whole
        for run in (one, two):
            assert run["resumed_from"] == [4]
            assert run["resumed_max_diff"] == 0.0
            np.testing.assert_allclose(run["adapter_label_scores"], run["label_scores"],
                                       rtol=1e-5, atol=1e-5)
