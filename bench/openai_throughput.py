"""Evaluation throughput of the openai backend against `unified-prompt serve` with a
simulated network latency, next to the raw SDK sending the same requests.

    .venv/bin/python bench/openai_throughput.py [--examples 800] [--latency-ms 200]
        [--concurrency 32] [--faults 0.0]

The server runs in its own process (the fake backend behind it, so the model costs
nothing): what is measured is the client's request pipeline. The ideal is
concurrency / latency requests per second; the target is at least 0.8 of it. Costs are
priced as gpt-4o-mini (the price table's entry), per 1,000 examples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"
MODEL = "fake-bench"


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc), all threads."""
    with open(f"/proc/{pid}/stat") as fh:
        parts = fh.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, latency_ms: float, fault_rate: float) -> subprocess.Popen:
    # A small fake model: the server stands in for a remote host, so its own compute
    # should take as little of this machine's CPU as possible.
    cmd = [sys.executable, "-m", "unified_prompt.cli", "serve", "--backend", "fake",
           "--model", MODEL, "--port", str(port), "--latency-ms", str(latency_ms),
           "--api-key", KEY, "--log-level", "warning", "--option", "vocab_size=64",
           "--option", "dim=4"]
    if fault_rate:
        cmd += ["--fault-rate", str(fault_rate), "--fault-seed", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models",
                                         headers={"Authorization": f"Bearer {KEY}"})
            urllib.request.urlopen(req, timeout=1).read()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode()) from None
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def write_data(folder: Path, n: int) -> dict[str, str]:
    sys.path.insert(0, str(ROOT / "tests" / "openai"))
    import openai_testkit as kit

    return kit.write_data(folder, train=0, dev=0, test=n)


def run_backend(base_url: str, files: dict[str, str], n: int, concurrency: int,
                tmp: Path, server_pid: int, echo_batch: int = 1) -> dict:
    from unified_prompt.runner import Experiment

    spec = {"task": "classification", "seed": 1,
            "backend": {"name": "openai", "model": MODEL, "options": {"openai": {
                "base_url": base_url, "api_key": KEY, "concurrency": concurrency,
                "cache": False, "echo_batch": echo_batch,
                "prices": {MODEL: {"input": 0.15, "output": 0.60}}}}},
            "data": {"files": files},
            "prompt": {"template": "Review: {text}\nSentiment: {mask}",
                       "verbalizer": {"positive": ["good"], "negative": ["bad"]}},
            "eval": {"split": "test"}}
    from unified_prompt.metrics import accuracy

    accuracy(["a"], ["a"], ["a"])  # import scikit-learn before the clock starts
    server_cpu, client_cpu = process_cpu(server_pid), time.process_time()
    result = Experiment.from_dict(spec).run(out=tmp / f"run-{echo_batch}", progress=False)
    server_cpu, client_cpu = (process_cpu(server_pid) - server_cpu,
                              time.process_time() - client_cpu)
    m = result.metrics
    usage = m["usage"]
    eval_requests = usage["requests"] - 1  # the one echo probe happens at load time
    return {"examples": n, "eval_seconds": m["eval_seconds"],
            "requests": eval_requests,
            "requests_per_s": round(eval_requests / m["eval_seconds"], 1),
            "examples_per_s": round(n / m["eval_seconds"], 1),
            "requests_per_example": round(eval_requests / n, 3),
            "retries": usage["retries"], "errors": usage.get("errors", {}),
            "prompt_tokens_per_example": round(usage["prompt_tokens"] / n, 1),
            "cost_per_1000_examples_usd": round(usage["cost_usd"] / n * 1000, 5),
            "client_cpu_ms_per_request": round(client_cpu / usage["requests"] * 1000, 2),
            "server_cpu_ms_per_request": round(server_cpu / usage["requests"] * 1000, 2),
            "accuracy": m["metrics"]["accuracy"],
            "predictions": [r["prediction"] for r in result.predictions]}


def run_raw_sdk(base_url: str, files: dict[str, str], n: int, concurrency: int,
                server_pid: int) -> dict:
    """The same echo requests with AsyncOpenAI and a semaphore: the library's floor."""
    from openai import AsyncOpenAI

    rows = [json.loads(x) for x in Path(files["test"]).read_text().splitlines()]
    prompts = [f"Review: {r['text']}\nSentiment:" for r in rows]

    failed: list[str] = []

    async def main() -> float:
        client = AsyncOpenAI(base_url=base_url, api_key=KEY)  # the SDK's default retries
        sem = asyncio.Semaphore(concurrency)

        async def one(p: str) -> None:
            async with sem:
                try:
                    await client.completions.create(model=MODEL, prompt=[p + " good", p + " bad"],
                                                    max_tokens=0, echo=True, logprobs=0,
                                                    temperature=0)
                except Exception as exc:  # counted: the baseline gives up where we retry
                    failed.append(type(exc).__name__)

        await one(prompts[0])  # warm the connection pool as the backend's probe does
        start = time.perf_counter()
        await asyncio.gather(*(one(p) for p in prompts))
        seconds = time.perf_counter() - start
        await client.close()
        return seconds

    server_cpu, client_cpu = process_cpu(server_pid), time.process_time()
    seconds = asyncio.run(main())
    server_cpu, client_cpu = (process_cpu(server_pid) - server_cpu,
                              time.process_time() - client_cpu)
    return {"examples": n, "seconds": round(seconds, 3),
            "requests_per_s": round(n / seconds, 1), "failed_requests": len(failed),
            "client_cpu_ms_per_request": round(client_cpu / n * 1000, 2),
            "server_cpu_ms_per_request": round(server_cpu / n * 1000, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=800)
    ap.add_argument("--latency-ms", type=float, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--faults", type=float, default=0.0)
    ap.add_argument("--echo-batch", type=int, default=8,
                    help="Examples per request for the second, packed run.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("UNIFIED_PROMPT_PROGRESS", "0")
    port = free_port()
    server = start_server(port, args.latency_ms, args.faults)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            files = write_data(Path(tmp) / "data", args.examples)
            ours = run_backend(base_url, files, args.examples, args.concurrency, Path(tmp),
                               server.pid)
            packed = run_backend(base_url, files, args.examples, args.concurrency, Path(tmp),
                                 server.pid, echo_batch=args.echo_batch)
            raw = run_raw_sdk(base_url, files, args.examples, args.concurrency, server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    same = ours.pop("predictions") == packed.pop("predictions")
    ideal = args.concurrency / (args.latency_ms / 1000.0)
    report = {"latency_ms": args.latency_ms, "concurrency": args.concurrency,
              "fault_rate": args.faults, "ideal_requests_per_s": round(ideal, 1),
              "unified_prompt": ours, "unified_prompt_packed": packed,
              "packed_predictions_identical": same, "raw_sdk": raw,
              "ratio_to_ideal": round(ours["requests_per_s"] / ideal, 3),
              "target_met": ours["requests_per_s"] >= 0.8 * ideal}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"latency {args.latency_ms:.0f} ms, concurrency {args.concurrency}, "
          f"faults {args.faults:.0%}: ideal {ideal:.0f} requests/s")
    print(f"  openai backend: {ours['requests_per_s']} requests/s "
          f"({ours['examples_per_s']} examples/s, {report['ratio_to_ideal']:.2f} x ideal), "
          f"{ours['requests_per_example']} requests/example, "
          f"${ours['cost_per_1000_examples_usd']} per 1,000 examples at gpt-4o-mini prices, "
          f"{ours['retries']} retries")
    print(f"    CPU per request: client {ours['client_cpu_ms_per_request']} ms, "
          f"server {ours['server_cpu_ms_per_request']} ms")
    print(f"  openai backend, echo_batch={args.echo_batch}: {packed['examples_per_s']} examples/s "
          f"({packed['requests_per_s']} requests/s, {packed['requests_per_example']} "
          f"requests/example; predictions identical to the unpacked run: {same})")
    print(f"  raw AsyncOpenAI + semaphore: {raw['requests_per_s']} requests/s; CPU per request: "
          f"client {raw['client_cpu_ms_per_request']} ms, "
          f"server {raw['server_cpu_ms_per_request']} ms"
          + (f"; {raw['failed_requests']} requests failed after the SDK's own retries"
             if raw["failed_requests"] else ""))
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  target (>= 0.8 x ideal): {'met' if report['target_met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
