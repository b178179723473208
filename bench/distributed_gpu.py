"""Data-parallel training throughput per GPU: the hf backend under the core's loop against
plain peft + accelerate (DDP), in the same torchrun launch, bf16, NCCL, random weights.

Each rank trains a global batch of `--batch-per-gpu x N` random-token sequences per step:
ours takes its share through the core's sharding (`local_micro_batches`), sums gradients
with `sync_gradients` and steps; plain peft wraps the same model folder with
`accelerate.Accelerator` (DDP with gradient bucketing overlapped with backward) and trains
on its own share. Steps alternate in blocks so drift hits both sides; the medians give
tokens/s per GPU (the tokens one rank trains per second).

    torchrun --nproc_per_node 8 bench/distributed_gpu.py --shape smollm2-135m --method lora
    torchrun --nproc_per_node 8 bench/distributed_gpu.py --shape llama-1b --method full \
        --batch-per-gpu 8 --seq 1024
    python bench/distributed_gpu.py --smoke      # 2 CPU processes (gloo), tiny shape, fp32

The smoke mode starts itself under torchrun: it checks that the script runs, not speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hf_gpu_throughput import ALL_LINEAR, SHAPES, write_model


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-135m")
    ap.add_argument("--method", choices=["full", "lora", "prompt_tuning"], default="lora")
    ap.add_argument("--batch-per-gpu", type=int, default=32)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per side")
    ap.add_argument("--folder", default=None, help="model folder (written once if missing)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--smoke", action="store_true",
                    help="2 CPU processes, tiny shape: a check that the script runs")
    return ap.parse_args()


def smoke(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="dist-gpu-smoke-"))
    write_model("tiny", folder)  # once, before the ranks start
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", __file__, "--shape", "tiny", "--method", args.method, "--batch-per-gpu", "2",
           "--seq", "32", "--steps", "4", "--folder", str(folder)]
    if args.json:
        cmd += ["--json", args.json]
    sys.exit(subprocess.run(cmd, check=False).returncode)


def main() -> None:
    args = parse()
    if args.smoke and "RANK" not in os.environ:
        smoke(args)
    warnings.filterwarnings("ignore")
    import torch
    from accelerate import Accelerator
    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM

    from unified_prompt.backend import TrainItem, TrainSetup
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.distributed import local_micro_batches, open_world
    from unified_prompt.prompts.builder import experiment_template
    from unified_prompt.prompts.segments import Mask, Rendered, Text
    from unified_prompt.registry import create_backend

    gpu = torch.cuda.is_available()
    device, dtype = ("cuda", "bfloat16") if gpu else ("cpu", "float32")
    backend = create_backend("hf", {"device": device, "dtype": dtype,
                                    "max_length": args.seq + 64})
    world = open_world(backend)
    # rank 0 writes the folder once: several nodes need --folder on a shared filesystem
    folder = Path(args.folder) if args.folder else \
        Path(tempfile.gettempdir()) / f"dist-gpu-{args.shape}"
    if world.is_main and not (folder / "config.json").exists():
        write_model(args.shape, folder)
    world.barrier()
    base = backend.load_model(str(folder))

    n = world.size
    global_batch = args.batch_per_gpu * n
    vocab = SHAPES[args.shape]["vocab_size"]
    gen = torch.Generator().manual_seed(0)  # the same batches on every rank
    batches = [torch.randint(3, vocab, (global_batch, args.seq), generator=gen)
               for _ in range(args.steps + 1)]
    for ids in batches:
        ids[:, -1] = 2  # EOS, as our generation target ends

    settings = {"full": {}, "lora": {"r": 16, "alpha": 32, "target_modules": ALL_LINEAR},
                "prompt_tuning": {"num_virtual_tokens": 20, "init": "random"}}[args.method]
    spec = ExperimentSpec.model_validate({
        "task": "generation", "data": {"dataset": "bbc_headlines"},
        "prompt": {"template": "{text}{mask}"},
        "finetune": {"method": args.method, "precision": "bf16" if gpu else "fp32",
                     "batch_size": global_batch, **settings}})
    setup = TrainSetup(method=spec.finetune, task="generation", seed=0,
                       soft_slots=experiment_template(spec).soft_slots, world=world)
    session = backend.start_training(base, setup)
    soft = list(setup.soft_slots)

    def items(ids: torch.Tensor) -> list[TrainItem]:
        return [TrainItem(Rendered.of([*soft, Text(f"w{int(r[0])}"), Mask()]),
                          target=" ".join(f"w{int(t)}" for t in r[1:-1])) for r in ids]

    our_data = [items(ids) for ids in batches]

    def ours(i: int) -> None:
        for idx, weight in local_micro_batches([list(range(global_batch))], world):
            session.forward_backward([our_data[i][j] for j in idx], weight)
        session.sync_gradients()
        session.optimizer_step(1e-5, 1.0)

    accelerator = Accelerator(cpu=not gpu)
    plain = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype))
    if args.method == "lora":
        plain = get_peft_model(plain, LoraConfig(r=16, lora_alpha=32, target_modules=ALL_LINEAR,
                                                 task_type=TaskType.CAUSAL_LM))
    elif args.method == "prompt_tuning":
        plain = get_peft_model(plain, PromptTuningConfig(task_type=TaskType.CAUSAL_LM,
                                                         num_virtual_tokens=20))
    params = [p for p in plain.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, **({"fused": True} if gpu else {}))
    plain, opt = accelerator.prepare(plain, opt)
    plain.train()
    rank = world.rank

    def theirs(i: int) -> None:
        ids = batches[i][rank * args.batch_per_gpu:(rank + 1) * args.batch_per_gpu]
        ids = ids.to(accelerator.device)
        accelerator.backward(plain(input_ids=ids, labels=ids).loss)
        accelerator.clip_grad_norm_(plain.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if gpu else (lambda: None)
    times: dict[str, list[float]] = {"ours": [], "peft_accelerate": []}
    for fn in (ours, theirs):
        fn(0)  # warm-up
    for block in range(2):
        for name, fn in (("ours", ours), ("peft_accelerate", theirs)):
            for i in range(1 + block * args.steps // 2, 1 + (block + 1) * args.steps // 2):
                sync()
                world.barrier()
                t0 = time.perf_counter()
                fn(i)
                sync()
                times[name].append(time.perf_counter() - t0)
    slowest = {k: max(world.gather_json(statistics.median(v))) for k, v in times.items()}
    tokens = args.batch_per_gpu * args.seq
    row = {f"{k}_tok_s_per_gpu": tokens / t for k, t in slowest.items()}
    row["ratio"] = row["ours_tok_s_per_gpu"] / row["peft_accelerate_tok_s_per_gpu"]
    if world.is_main:
        print(f"{args.shape} {args.method} on {n} x {device} ({dtype}), batch "
              f"{args.batch_per_gpu}/gpu x seq {args.seq}: ours "
              f"{row['ours_tok_s_per_gpu']:,.0f} tok/s/gpu, peft+accelerate "
              f"{row['peft_accelerate_tok_s_per_gpu']:,.0f} tok/s/gpu, ratio "
              f"{row['ratio']:.3f}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps({
                "shape": args.shape, "method": args.method, "processes": n, "device": device,
                "batch_per_gpu": args.batch_per_gpu, "seq": args.seq, **row}, indent=2))
    session.close()
    accelerator.end_training()
    world.close()


if __name__ == "__main__":
    main()
