"""Training throughput (tokens/s) of the hf backend against plain peft, bf16, random weights.

Written for the lent GPU machine (H100/H200: see /work/shared/notes/environment.md for the
plain-peft figures measured there); `--shape tiny --device cpu` is a CPU smoke check.
Both sides train the same model folder (random weights of the named shape, written once),
the same random tokens (a word-level tokenizer, so every token is one id) and the same
optimizer, in one process, alternating blocks of steps. The work is causal-LM training on
every token: ours as a generation task (a 1-token prompt, the rest target + EOS), plain peft
as `model(input_ids, labels=input_ids)`.

    python bench/hf_gpu_throughput.py --shape smollm2-135m --batch 32 --seq 512
    python bench/hf_gpu_throughput.py --shape llama-1b --batch 8 --seq 1024
    python bench/hf_gpu_throughput.py --shape tiny --device cpu --batch 4 --seq 64 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

SHAPES = {
    "smollm2-135m": {"hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
                     "vocab_size": 49152, "rope_theta": 100000.0},
    "llama-1b": {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                 "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                 "vocab_size": 128256, "rope_theta": 500000.0},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
             "vocab_size": 1024, "rope_theta": 10000.0},
}
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def write_model(shape: str, folder: Path) -> None:
    """Random weights of the shape plus a word-level tokenizer: "w{i}" is token i."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    dims = SHAPES[shape]
    config = LlamaConfig(**dims, max_position_embeddings=4096, tie_word_embeddings=True,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(str(folder))
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2} | {f"w{i}": i for i in range(3, dims["vocab_size"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>")
    fast.save_pretrained(str(folder))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-135m")
    ap.add_argument("--method", choices=["full", "lora", "prompt_tuning", "all"], default="all")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per side and method")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--folder", default=None, help="reuse a model folder")
    ap.add_argument("--json", default=None, help="write the results here too")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    from peft import LoraConfig, PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM

    from unified_prompt.backend import TrainItem, TrainSetup
    from unified_prompt.config import ExperimentSpec
    from unified_prompt.prompts.segments import Mask, Rendered, Text
    from unified_prompt.registry import create_backend

    folder = Path(args.folder or tempfile.mkdtemp(prefix=f"hf-gpu-{args.shape}-"))
    if not (folder / "config.json").exists():
        write_model(args.shape, folder)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else args.device
    dtype = "bfloat16" if device == "cuda" else "float32"
    backend = create_backend("hf", {"device": device, "dtype": dtype,
                                    "max_length": args.seq + 64})
    base = backend.load_model(str(folder))
    vocab = SHAPES[args.shape]["vocab_size"]
    gen = torch.Generator().manual_seed(0)

    def batch_items() -> tuple[list[TrainItem], torch.Tensor]:
        ids = torch.randint(3, vocab, (args.batch, args.seq), generator=gen)
        items = [TrainItem(Rendered.of([Text(f"w{int(r[0])}"), Mask()]),
                           target=" ".join(f"w{int(t)}" for t in r[1:-1])) for r in ids]
        ids[:, -1] = 2  # EOS, as our generation target ends
        return items, ids

    data = [batch_items() for _ in range(args.steps + 1)]
    methods = ["full", "lora", "prompt_tuning"] if args.method == "all" else [args.method]
    settings = {"full": {}, "lora": {"r": 16, "alpha": 32, "target_modules": ALL_LINEAR},
                "prompt_tuning": {"num_virtual_tokens": 20, "init": "random"}}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    results = {}
    for method in methods:
        spec = ExperimentSpec.model_validate({
            "task": "generation", "data": {"dataset": "bbc_headlines"},
            "prompt": {"template": "{text}{mask}"},
            "finetune": {"method": method, "precision": "bf16" if device == "cuda" else "fp32",
                         **settings[method]}})
        from unified_prompt.prompts.builder import experiment_template

        setup = TrainSetup(method=spec.finetune, task="generation", seed=0,
                           soft_slots=experiment_template(spec).soft_slots)
        session = backend.start_training(base, setup)
        soft = list(setup.soft_slots)
        our_data = [([TrainItem(Rendered.of([*soft, *it.prompt.segments]), target=it.target)
                      for it in items], ids) for items, ids in data]

        plain = AutoModelForCausalLM.from_pretrained(str(folder), dtype=getattr(torch, dtype))
        plain.to(device)
        if method == "lora":
            plain = get_peft_model(plain, LoraConfig(r=16, lora_alpha=32,
                                                     target_modules=ALL_LINEAR,
                                                     task_type=TaskType.CAUSAL_LM))
        elif method == "prompt_tuning":
            plain = get_peft_model(plain, PromptTuningConfig(task_type=TaskType.CAUSAL_LM,
                                                             num_virtual_tokens=20))
        plain.train()
        params = [p for p in plain.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-5, **({"fused": True} if device == "cuda"
                                                    else {}))

        def ours(i: int, session=session, our_data=our_data) -> None:
            session.forward_backward(our_data[i][0], 1.0)
            session.optimizer_step(1e-5, 1.0)

        def theirs(i: int, plain=plain, opt=opt, params=params) -> None:
            ids = data[i][1].to(device)
            plain(input_ids=ids, labels=ids).loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        times: dict[str, list[float]] = {"ours": [], "plain_peft": []}
        for fn in (ours, theirs):
            fn(0)  # warm-up
        for block in range(2):  # alternate halves so drift hits both sides
            for name, fn in (("ours", ours), ("plain_peft", theirs)):
                half = range(1 + block * args.steps // 2, 1 + (block + 1) * args.steps // 2)
                for i in half:
                    sync()
                    t0 = time.perf_counter()
                    fn(i)
                    sync()
                    times[name].append(time.perf_counter() - t0)
        tokens = args.batch * args.seq
        row = {k: tokens / statistics.median(v) for k, v in times.items()}
        row["ratio"] = row["ours"] / row["plain_peft"]
        row["trainable_ours"] = session.trainable_params
        results[method] = row
        print(f"{args.shape} {method:14s} batch {args.batch} x seq {args.seq} on {device}: "
              f"ours {row['ours']:,.0f} tok/s, plain peft {row['plain_peft']:,.0f} tok/s, "
              f"ratio {row['ratio']:.3f}", flush=True)
        session.close()
        if device == "cuda":
            torch.cuda.empty_cache()
    if args.json:
        Path(args.json).write_text(json.dumps({"shape": args.shape, "batch": args.batch,
                                               "seq": args.seq, "device": device,
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
