"""Hostile / careless-user inputs (issue 12, everything but the server): crafted pickles,
symlinks, bad data/labels/fields, manifests, damaged checkpoints, YAML bombs, Ctrl-C,
Chinese metrics. Prints one row per case (handled well or not) and writes a tally JSON.

    python bench/probe_inputs.py [CHECKOUT] [filter]     # CHECKOUT defaults to this repo

Every case runs the CLI of CHECKOUT's .venv in a fresh process, under /tmp/unified-prompt-probe.
The regression tests for these cases are in the suite (tests/test_config.py, test_data.py,
test_artifacts.py, test_metrics.py, tests/hf|paddle/test_*_untrusted.py).
"""

import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

WT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
FILTER = sys.argv[2] if len(sys.argv) > 2 else ""
PY = str(WT / ".venv/bin/python")
SCRATCH = Path("/tmp/unified-prompt-probe")
BASE = SCRATCH / "cases"
TINY = subprocess.run([PY, "-c", "from unified_prompt.testing.tiny import tiny_model; "
                      "print(tiny_model('llama'))"], capture_output=True, text=True,
                      check=True).stdout.strip()
ROWS = []


def cli(*args, cwd=None, timeout=300, mem_gb=None, env=None):
    def limit():
        if mem_gb:
            resource.setrlimit(resource.RLIMIT_AS, (mem_gb << 30, mem_gb << 30))

    e = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0", **(env or {})}
    t = time.time()
    try:
        p = subprocess.run(
            [PY, "-m", "unified_prompt.cli", *map(str, args)],
            cwd=cwd or WT,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=limit,
            env=e,
        )
        return p.returncode, p.stdout, p.stderr, time.time() - t
    except subprocess.TimeoutExpired:
        return "timeout", "", "", time.time() - t


def verdict(rc, err, want_rc=2, extra_ok=True):
    tb = "Traceback" in err
    good = rc == want_rc and not tb and extra_ok
    return good, tb


def record(case, family, rc, err, secs, want_rc=2, extra_ok=True, note=""):
    good, tb = verdict(rc, err, want_rc, extra_ok)
    last = [x for x in err.strip().splitlines() if x.strip()]
    msg = (last[-1] if tb else (last[0] if last else "")).strip()[:150]
    ROWS.append(
        dict(
            case=case,
            family=family,
            rc=rc,
            traceback=tb,
            ok=good,
            secs=round(secs, 1),
            msg=msg,
            note=note,
        )
    )
    print(
        f"{'OK ' if good else 'BAD'} [{family}] {case}: rc={rc} tb={tb} {secs:.1f}s :: {msg} {note}",
        flush=True,
    )


def fresh(name):
    d = BASE / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def toy_data(d, n=12):
    data = d / "data"
    data.mkdir()
    words = ["good film", "bad film", "great acting", "awful plot", "wonderful", "terrible"]
    for split, reps in (("train", 3), ("dev", 1), ("test", 1)):
        rows = [
            {
                "id": f"{split}-{r}-{i}",
                "text": words[i % 6] + f" {i}",
                "label": "positive" if i % 2 == 0 else "negative",
            }
            for r in range(reps)
            for i in range(n)
        ]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    return data


def spec_text(
    data,
    backend="fake",
    model="fake-toy",
    method="lora",
    extra="",
    train="train.jsonl",
    test="test.jsonl",
    dev="dev.jsonl",
    verbalizer="positive: [good]\n    negative: [bad]",
    steps=6,
):
    ft = (
        f"finetune:\n  method: {method}\n  max_steps: {steps}\n  batch_size: 4\n"
        f"  checkpoint_every: 2\n  eval_every: 3\n"
        if method != "none"
        else ""
    )
    return (
        f"task: classification\nseed: 5\nbackend:\n  name: {backend}\n  model: {model}\n"
        f"data:\n  files:\n    train: {data}/{train}\n    dev: {data}/{dev}\n"
        f"    test: {data}/{test}\n"
        f'prompt:\n  template: "Review: {{text}}\\nSentiment: {{mask}}"\n'
        f"  verbalizer:\n    {verbalizer}\n{ft}{extra}"
    )


def want(name):
    return FILTER in name


PWN = "import os; open(os.environ.get('PWN_FILE', '/tmp/unified-prompt-probe/pwned'), 'w').write('pwned')"


class Evil:
    def __reduce__(self):
        return (exec, (PWN,))


# ---------------------------------------------------------------- A: untrusted pickles
def paddle_adapter(d, name="lora"):
    """A real paddle LoRA adapter folder, from a fake? no: from the hf tiny model via train."""
    spec = d / "train.yaml"
    data = toy_data(d)
    spec.write_text(spec_text(data, backend="paddle", model=TINY, steps=2))
    rc, _out, err, _ = cli("run", spec, "--out", d / "run", "--set", "eval.limit=2")
    assert rc == 0, err
    shutil.copytree(d / "run" / "adapter", d / name)
    eval_spec = d / "eval.yaml"
    eval_spec.write_text(spec_text(data, backend="paddle", model=TINY, method="none"))
    return d / name, eval_spec


def family_a():
    if not want("A"):
        return
    d = fresh("A-paddle")
    adapter, spec = paddle_adapter(d)
    pw = d / "pwned"
    env = {"PWN_FILE": str(pw)}
    good = adapter
    evil = d / "evil"
    shutil.copytree(good, evil)
    (evil / "lora_model_state.pdparams").write_bytes(pickle.dumps({"x": Evil()}))
    rc, _out, err, s = cli("convert", evil, d / "conv", "--to", "hf", env=env)
    record(
        "A1 crafted pdparams on convert",
        "A",
        rc,
        err,
        s,
        extra_ok=not pw.exists(),
        note=f"side effect: {pw.exists()}",
    )
    pw.unlink(missing_ok=True)
    rc, _out, err, s = cli(
        "run", spec, "--backend", "paddle", "--set", f"eval.adapter={evil}", "--out", d / "r2", env=env
    )
    record(
        "A2 crafted pdparams on run eval.adapter",
        "A",
        rc,
        err,
        s,
        extra_ok=not pw.exists() and not (d / "r2").exists(),
        note=f"side effect: {pw.exists()}, out exists: {(d / 'r2').exists()}",
    )
    pw.unlink(missing_ok=True)
    for case, payload in (
        ("A4 pdparams a pickled list", pickle.dumps([1, 2])),
        ("A5 pdparams dict of str->str", pickle.dumps({"a": "b"})),
        (
            "A5b pdparams object array",
            pickle.dumps({"a": __import__("numpy").array([Evil()], dtype=object)}),
        ),
        ("A6 pdparams truncated", (good / "lora_model_state.pdparams").read_bytes()[:100]),
        ("A6b pdparams empty", b""),
        ("A6c pdparams not a pickle", b"hello world\n" * 10),
    ):
        bad = d / f"bad-{case[:3].strip()}"
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(good, bad)
        (bad / "lora_model_state.pdparams").write_bytes(payload)
        rc, _out, err, s = cli("convert", bad, d / f"conv-{case[:3].strip()}", "--to", "hf", env=env)
        record(
            case + " (convert)",
            "A",
            rc,
            err,
            s,
            extra_ok=not pw.exists(),
            note=f"side effect: {pw.exists()}",
        )
        pw.unlink(missing_ok=True)
    # symlink out of the adapter folder
    link = d / "linked"
    shutil.copytree(good, link)
    secret = d / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    (link / "lora_model_state.pdparams").unlink()
    (link / "lora_model_state.pdparams").symlink_to(secret)
    rc, _out, err, s = cli("convert", link, d / "conv-link", "--to", "hf")
    record(
        "A8 weights symlinked out of the adapter folder",
        "A",
        rc,
        err,
        s,
        extra_ok="TOP-SECRET" not in err,
    )
    link2 = d / "linked2"
    shutil.copytree(good, link2)
    (link2 / "lora_config.json").unlink()
    (link2 / "lora_config.json").symlink_to(secret)
    rc, _out, err, s = cli("convert", link2, d / "conv-link2", "--to", "hf")
    record(
        "A8b config symlinked to a secret (content echoed?)",
        "A",
        rc,
        err,
        s,
        extra_ok="TOP-SECRET" not in err,
    )
    # hf resume with crafted rng.pt
    h = fresh("A-hf")
    data = toy_data(h)
    spec = h / "hf.yaml"
    spec.write_text(spec_text(data, backend="hf", model=TINY, steps=6))
    out_dir = h / "run"
    rc, _out, err, s = cli("run", spec, "--out", out_dir, "--set", "eval.limit=2")
    assert rc == 0, err
    ckpts = (
        sorted((out_dir / "checkpoints").glob("step-*")) if (out_dir / "checkpoints").exists() else []
    )
    # simulate an unfinished run: remove metrics/adapter/state, keep checkpoints
    (out_dir / "metrics.json").unlink()
    if not ckpts:
        pass
    shutil.rmtree(out_dir / "adapter", ignore_errors=True)
    (out_dir / "state.json").unlink(missing_ok=True)
    latest = out_dir / "checkpoints" / "latest"
    if not latest.exists():
        record(
            "A3 crafted rng.pt on hf --resume", "A", "n/a", "", 0, note="no checkpoint to tamper with"
        )
        return
    ck = out_dir / "checkpoints" / latest.read_text().strip() / "session"
    saved = {p.name: p.read_bytes() for p in ck.iterdir()}
    pw = h / "pwned"
    rng_names = [n for n in saved if n.startswith("rng")]
    import torch

    for name in rng_names:
        (ck / name).unlink()
    torch.save({"torch": Evil()}, ck / "rng.pt")
    rc, _out, err, s = cli(
        "run", spec, "--out", out_dir, "--set", "eval.limit=2", "--resume", env={"PWN_FILE": str(pw)}
    )
    record(
        "A3 crafted rng.pt on hf --resume",
        "A",
        rc,
        err,
        s,
        extra_ok=not pw.exists(),
        note=f"side effect: {pw.exists()}",
    )
    pw.unlink(missing_ok=True)
    (ck / "rng.pt").unlink()
    for n, b in saved.items():
        (ck / n).write_bytes(b)
    torch.save({"state": Evil()}, ck / "optimizer.pt")
    rc, _out, err, s = cli(
        "run", spec, "--out", out_dir, "--set", "eval.limit=2", "--resume", env={"PWN_FILE": str(pw)}
    )
    record(
        "A7 crafted optimizer.pt on hf --resume",
        "A",
        rc,
        err,
        s,
        extra_ok=not pw.exists(),
        note=f"side effect: {pw.exists()}",
    )
    for n, b in saved.items():
        (ck / n).write_bytes(b)
    st = ck / "trainable.safetensors"
    st.write_bytes(saved["trainable.safetensors"][:50])
    rc, _out, err, s = cli("run", spec, "--out", out_dir, "--set", "eval.limit=2", "--resume")
    record("D1 truncated trainable.safetensors on hf --resume", "D", rc, err, s)
    for n, b in saved.items():
        (ck / n).write_bytes(b)
    (ck / "session.json").write_text("{not json")
    rc, _out, err, s = cli("run", spec, "--out", out_dir, "--set", "eval.limit=2", "--resume")
    record("D1b corrupt session.json on hf --resume", "D", rc, err, s)
    for n, b in saved.items():
        (ck / n).write_bytes(b)


# ---------------------------------------------------------------- B: data / labels / fields
def family_b():
    if not want("B"):
        return
    d = fresh("B")
    toy_data(d)
    d / "s.yaml"

    def both(case, mutate_spec=None, files=None, want_rc=2, needle=None):
        dd = fresh("B-" + case[:3].strip())
        data2 = toy_data(dd)
        for name, content in (files or {}).items():
            p = data2 / name
            p.write_bytes(content if isinstance(content, bytes) else content.encode())
        kw = mutate_spec(data2) if mutate_spec else {}
        sp = dd / "s.yaml"
        sp.write_text(spec_text(data2, **kw))
        res = {}
        for cmd in ("validate", "run"):
            args = [cmd, sp] + (["--out", dd / "run"] if cmd == "run" else [])
            rc, _out, err, s = cli(*args)
            res[cmd] = (rc, err, s)
        rv, ev, sv = res["validate"]
        rr, er, sr = res["run"]
        agree = (rv == 0) == (rr == 0)
        named = needle is None or (needle in ev and needle in er)
        wrote = (dd / "run").exists() and rr != 0
        record(case + " [validate]", "B", rv, ev, sv, want_rc=want_rc, extra_ok=named)
        record(
            case + " [run]",
            "B",
            rr,
            er,
            sr,
            want_rc=want_rc,
            extra_ok=agree and named and not wrote,
            note=f"agree={agree} wrote_dir={wrote}",
        )

    both(
        "B1 verbalizer label missing from the data",
        lambda dd: {"verbalizer": "positive: [good]\n    negative: [bad]\n    neutral: [meh]"},
    )
    both(
        "B2 data label missing from the verbalizer",
        files={
            "train.jsonl": (d / "data/train.jsonl").read_text()
            + json.dumps({"id": "x", "text": "meh", "label": "neutral"})
            + "\n"
        },
        needle="neutral",
    )
    train = [json.loads(x) for x in (d / "data/train.jsonl").read_text().splitlines()]
    for case, value in (
        ("B3 text field missing on train line 7", None),
        ("B4 text null on train line 7", "null"),
        ("B4b text a list on train line 7", "list"),
        ("B4c text an object on train line 7", "dict"),
        ("B4d text a bool on train line 7", "bool"),
    ):
        rows = [dict(r) for r in train]
        if value is None:
            del rows[6]["text"]
        else:
            rows[6]["text"] = {"null": None, "list": ["a", "b"], "dict": {"a": 1}, "bool": True}[value]
        both(
            case,
            files={"train.jsonl": "".join(json.dumps(r) + "\n" for r in rows)},
            needle="train.jsonl:7",
        )
    rows = [dict(r) for r in train]
    rows[6]["label"] = ["positive"]
    both(
        "B10 label a list on train line 7",
        files={"train.jsonl": "".join(json.dumps(r) + "\n" for r in rows)},
        needle="train.jsonl:7",
    )
    csv_rows = "id,text,label\n" + "".join(
        f"c{i},nice film {i},{'positive' if i % 2 else 'negative'}\n" for i in range(12)
    )
    both(
        "B5 non-UTF-8 CSV (latin-1 on line 5)",
        lambda dd: {"train": "train.csv"},
        files={"train.csv": csv_rows.replace("nice film 3", "caf\xe9 film").encode("latin-1")},
        needle="train.csv",
    )
    both(
        "B7 UTF-8 BOM in CSV",
        lambda dd: {"train": "train.csv"},
        files={"train.csv": b"\xef\xbb\xbf" + csv_rows.encode()},
        want_rc=0,
    )
    both(
        "B7b UTF-8 BOM in JSONL",
        files={"train.jsonl": b"\xef\xbb\xbf" + (d / "data/train.jsonl").read_bytes()},
        want_rc=0,
    )
    # fields: {text: review} where CSV has no review column (spec extra)
    dd = fresh("B-fields")
    data2 = toy_data(dd)
    (data2 / "train.csv").write_text(csv_rows)
    sp = dd / "s.yaml"
    txt = spec_text(data2, train="train.csv").replace("  files:", "  fields: {text: review}\n  files:")
    sp.write_text(txt)
    for cmd in ("validate", "run"):
        rc, _out, err, s = cli(cmd, sp, *(["--out", dd / "run"] if cmd == "run" else []))
        record(
            f"B8 fields: {{text: review}} with no review column [{cmd}]",
            "B",
            rc,
            err,
            s,
            extra_ok="review" in err,
        )
    both(
        "B11 CSV with a header only",
        lambda dd: {"train": "train.csv"},
        files={"train.csv": "id,text,label\n"},
    )
    both(
        "B12 CSV row with extra columns",
        lambda dd: {"train": "train.csv"},
        files={"train.csv": csv_rows + "z1,a,b,c,d\n"},
    )
    both(
        "B13 JSONL line that is a JSON array",
        files={"dev.jsonl": (d / "data/dev.jsonl").read_text() + "[1, 2]\n"},
    )
    both(
        "B14 JSONL invalid JSON (NaN literal ok?)",
        files={
            "dev.jsonl": (d / "data/dev.jsonl").read_text()
            + '{"id": "n", "text": NaN, "label": "positive"}\n'
        },
    )
    both("B15 data file is a directory", lambda dd: {"train": "."})
    both("B16 eval split empty via a test file with only blank lines", files={"test.jsonl": "\n\n"})
    both("B17 binary garbage as JSONL", files={"dev.jsonl": bytes(range(256)) * 4})
    both(
        "B18 label number with label_map missing",
        files={"train.jsonl": (d / "data/train.jsonl").read_text().replace('"positive"', "1", 1)},
    )


# ---------------------------------------------------------------- C: manifests / adapters
def family_c():
    if not want("C"):
        return
    d = fresh("C")
    data = toy_data(d)
    spec = d / "s.yaml"
    spec.write_text(spec_text(data))
    rc, _out, err, _ = cli("run", spec, "--out", d / "run", "--set", "eval.limit=2")
    assert rc == 0, err
    good = d / "run" / "adapter"
    spec.write_text(spec_text(data, method="none"))
    cases = [
        ("C1 manifest.json not JSON", "{oops"),
        ("C2 manifest.json a JSON array", "[1, 2]"),
        ("C2b manifest.json a JSON string", '"hello"'),
        ("C2c manifest.json empty", ""),
        ("C2d manifest.json latin-1 bytes", "\xe9"),
    ]
    manifest = json.loads((good / "manifest.json").read_text())
    for key, value in (
        ("version", "1"),
        ("method", 5),
        ("base_model", "x"),
        ("method_config", "x"),
        ("trainable_params", "many"),
        ("method_config", {"method": "lora", "r": -3}),
        ("version", 99),
        ("format", None),
        ("base_model", {"checksum": 7}),
    ):
        m = dict(manifest)
        m[key] = value
        cases.append((f"C3 manifest {key}={json.dumps(value)}", json.dumps(m)))
    for i, (case, text) in enumerate(cases):
        bad = d / f"bad{i}"
        shutil.copytree(good, bad)
        raw = text.encode("latin-1") if "latin-1" in case else text.encode()
        (bad / "manifest.json").write_bytes(raw)
        rc, _out, err, s = cli("run", spec, "--set", f"eval.adapter={bad}", "--set", "eval.limit=2")
        record(case + " (run eval.adapter)", "C", rc, err, s)
    # paddle target_modules
    p = fresh("C-paddle")
    adapter, pspec = paddle_adapter(p)
    for case, mutate in (
        (
            "C5 paddle lora_config target_modules unknown",
            lambda a: (
                (a / "unified_prompt_paddle.json").unlink()
                or (a / "lora_config.json").write_text(
                    json.dumps(
                        {
                            **json.loads((a / "lora_config.json").read_text()),
                            "target_modules": ["nonexistent_module"],
                        }
                    )
                )
            ),
        ),
        (
            "C5b paddle unified_prompt_paddle.json target_modules unknown",
            lambda a: (a / "unified_prompt_paddle.json").write_text(
                json.dumps(
                    {
                        **json.loads((a / "unified_prompt_paddle.json").read_text()),
                        "config": {
                            **json.loads((a / "unified_prompt_paddle.json").read_text())["config"],
                            "target_modules": ["bogus"],
                        },
                    }
                )
            ),
        ),
        (
            "C5c paddle lora_config.json r is a string",
            lambda a: (
                (a / "unified_prompt_paddle.json").unlink()
                or (a / "lora_config.json").write_text(
                    json.dumps({**json.loads((a / "lora_config.json").read_text()), "r": "eight"})
                )
            ),
        ),
        (
            "C5d paddle unified_prompt_paddle.json not JSON",
            lambda a: (a / "unified_prompt_paddle.json").write_text("{"),
        ),
        (
            "C5e paddle lora_config.json missing key",
            lambda a: (
                (a / "unified_prompt_paddle.json").unlink()
                or (a / "lora_config.json").write_text(
                    json.dumps(
                        {
                            k: v
                            for k, v in json.loads((a / "lora_config.json").read_text()).items()
                            if k != "r"
                        }
                    )
                )
            ),
        ),
        ("C5f paddle lora weights with a wrong shape", "shape"),
    ):
        bad = p / f"bad-{case[:4].strip()}"
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(adapter, bad)
        if mutate == "shape":
            import numpy as np

            arrays = pickle.loads((bad / "lora_model_state.pdparams").read_bytes())
            k = next(iter(arrays))
            arrays[k] = np.zeros((3, 3), np.float32)
            (bad / "lora_model_state.pdparams").write_bytes(pickle.dumps(arrays))
        else:
            mutate(bad)
        rc, _out, err, s = cli(
            "run", pspec, "--backend", "paddle", "--set", f"eval.adapter={bad}", "--set", "eval.limit=2"
        )
        record(case + " (run)", "C", rc, err, s)
        rc, _out, err, s = cli("convert", bad, p / f"conv-{case[:4].strip()}", "--to", "hf")
        record(case + " (convert)", "C", rc, err, s)


# ---------------------------------------------------------------- D: checkpoints / run dirs
def family_d():
    if not want("D"):
        return
    d = fresh("D")
    data = toy_data(d)
    spec = d / "s.yaml"
    spec.write_text(spec_text(data, steps=8))
    run = d / "run"
    rc, _out, err, _ = cli("run", spec, "--out", run)
    assert rc == 0, err
    (run / "metrics.json").unlink()
    shutil.rmtree(run / "adapter")
    (run / "state.json").unlink(missing_ok=True)
    snapshot = d / "snap"
    shutil.copytree(run, snapshot)

    def restore():
        shutil.rmtree(run)
        shutil.copytree(snapshot, run)

    ck = lambda: run / "checkpoints" / (run / "checkpoints/latest").read_text().strip()  # noqa: E731
    cases = [
        (
            "D2 truncated session.npz (fake)",
            lambda: (ck() / "session/session.npz").write_bytes(
                (ck() / "session/session.npz").read_bytes()[:40]
            ),
        ),
        ("D3 trainer.json not JSON", lambda: (ck() / "trainer.json").write_text("{")),
        ("D3b trainer.json wrong keys", lambda: (ck() / "trainer.json").write_text('{"stepz": 1}')),
        ("D3c trainer.json a list", lambda: (ck() / "trainer.json").write_text("[]")),
        ("D4 best.npz truncated", lambda: (ck() / "best.npz").write_bytes(b"PK\x03\x04junk")),
        (
            "D5 latest pointer escaping the run dir",
            lambda: (run / "checkpoints/latest").write_text("../../..\n"),
        ),
        (
            "D5b latest pointer to a missing step",
            lambda: (run / "checkpoints/latest").write_text("step-9999\n"),
        ),
        ("D6 state.json not JSON", lambda: (run / "state.json").write_text("{")),
        (
            "D7 events.jsonl corrupt middle line",
            lambda: (run / "events.jsonl").write_text(
                (run / "events.jsonl").read_text().replace("\n", "\n{broken\n", 1)
            ),
        ),
        ("D8 config.yaml not UTF-8", lambda: (run / "config.yaml").write_bytes(b"\xff\xfe")),
    ]
    for case, mutate in cases:
        restore()
        mutate()
        rc, _out, err, s = cli("run", spec, "--out", run, "--resume")
        want_rc = 0 if case.startswith(("D5b", "D7")) else 2
        record(case + " (--resume)", "D", rc, err, s, want_rc=want_rc)


# ---------------------------------------------------------------- E: YAML and numbers
def family_e():
    if not want("E"):
        return
    d = fresh("E")
    data = toy_data(d)
    base = spec_text(data, method="none")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(8)
    )
    bomb_spec = base + "name: *i\n"
    cases = [
        (
            "E1 alias bomb (1 KB) in the spec",
            bomb + base.replace("task:", "x_bomb_ref: *i\ntask:", 1)
            if False
            else bomb_spec.replace("task: classification", bomb + "task: classification", 1),
        ),
        ("E2 duplicate top-level key", base + "seed: 7\n"),
        ("E2b duplicate nested key", base.replace("  name: fake\n", "  name: fake\n  name: hf\n")),
        ("E3 lr: .inf", base + "finetune:\n  method: lora\n  lr: .inf\n"),
        ("E3b lr: .nan", base + "finetune:\n  method: lora\n  lr: .nan\n"),
        (
            "E3c split fractions .nan",
            base.replace("data:\n", "data:\n  split: {train: .nan, dev: .nan, test: .nan}\n"),
        ),
        ("E3d epochs .inf", base + "finetune:\n  method: lora\n  epochs: .inf\n"),
        ("E3e seed huge int", base.replace("seed: 5", "seed: 100000000000000000000000000")),
        ("E3f seed negative", base.replace("seed: 5", "seed: -1")),
        ("E3g eval.batch_size 10**20", base + "eval:\n  batch_size: 100000000000000000000\n"),
        ("E3h max_cost_usd .nan", base + "budget:\n  max_cost_usd: .nan\n"),
        ("E3i eval.limit -3", base + "eval:\n  limit: -3\n"),
        ("E3j warmup_ratio .nan", base + "finetune:\n  method: lora\n  warmup_ratio: .nan\n"),
        (
            "E3k max_steps huge",
            base + "finetune:\n  method: lora\n  max_steps: 100000000000000000000000\n",
        ),
        (
            "E3l lora r huge",
            base + "finetune:\n  method: lora\n  r: 100000000000000000000\n  max_steps: 1\n",
        ),
        (
            "E4 python tag",
            base + "name: !!python/object/apply:os.system ['touch /tmp/unified-prompt-probe/pwned-yaml']\n",
        ),
        ("E6 spec is a list", "- a\n- b\n"),
        ("E6b spec deeply nested", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("E6c spec not UTF-8", None),
        ("E6d spec with tabs", base.replace("  name: fake", "\tname: fake")),
        ("E6e empty spec", ""),
        ("E6f spec that is a scalar", "hello\n"),
        (
            "E6g merge key and anchors (legit, must pass)",
            base.replace(
                "backend:\n  name: fake\n  model: fake-toy\n",
                "defaults: &d {name: fake, model: fake-toy}\n".replace("defaults", "x_defaults")
                + "backend:\n  <<: *d\n",
            ),
        ),
        ("E6h 10000 anchors with small expansion (legit size, must not be refused?)", None),
    ]
    for case, text in cases:
        sp = d / "s.yaml"
        if case.startswith("E6c"):
            sp.write_bytes(base.replace("Review", "R\xe9view").encode("latin-1"))
        elif case.startswith("E6h"):
            continue
        else:
            sp.write_text(text)
        want_rc = 0 if "must pass" in case else 2
        if case.startswith("E6g"):
            sp.write_text(
                text.replace("x_defaults: &d {name: fake, model: fake-toy}\n", "").replace(
                    "backend:\n  <<: *d\n", "backend: &d\n  name: fake\n  model: fake-toy\n"
                )
            )
        rc, _out, err, s = cli("validate", sp, timeout=120, mem_gb=4)
        record(
            case + " [validate]",
            "E",
            rc,
            err,
            s,
            want_rc=want_rc,
            extra_ok=not Path("/tmp/unified-prompt-probe/pwned-yaml").exists(),
        )
        if case.startswith(("E3", "E1", "E2")):
            rc, _out, err, s = cli("run", sp, "--out", d / f"run-{case[:3]}", timeout=120, mem_gb=6)
            record(
                case + " [run]",
                "E",
                rc,
                err,
                s,
                want_rc=want_rc,
                extra_ok=not (d / f"run-{case[:3]}").exists() or want_rc == 0,
            )
    # --set overrides
    sp = d / "s.yaml"
    sp.write_text(base)
    for case, args in (
        (
            "E5 --set with a duplicate key in a flow mapping",
            ["--set", "prompt.verbalizer={positive: good, positive: fine, negative: bad}"],
        ),
        (
            "E5b --set with an alias bomb",
            ["--set", "name=" + "[" + ",".join(["&a [x,x,x,x,x,x,x,x,x,x]"] + ["*a"] * 9) + "]"],
        ),
        ("E5c --set finetune.lr=.inf", ["--set", "finetune.method=lora", "--set", "finetune.lr=.inf"]),
        ("E5d --set seed=1e400", ["--set", "seed=1e400"]),
    ):
        rc, _out, err, s = cli("validate", sp, *args, timeout=60, mem_gb=4)
        record(case + " [validate]", "E", rc, err, s)
    # events.jsonl strict JSON: a diverging run
    sp.write_text(spec_text(data, steps=4) + "")
    run = d / "run-nan"
    rc, _out, err, s = cli(
        "run", sp, "--out", run, "--set", "finetune.lr=1e300", "--set", "finetune.max_grad_norm=null"
    )
    strict = True
    if (run / "events.jsonl").exists():

        def bad_const(c):
            raise ValueError(c)

        for line in (run / "events.jsonl").read_text().splitlines():
            try:
                json.loads(line, parse_constant=bad_const)
            except ValueError:
                strict = False
        for f in ("metrics.json",):
            if (run / f).exists():
                try:
                    json.loads((run / f).read_text(), parse_constant=bad_const)
                except ValueError:
                    strict = False
    record(
        "E8 events.jsonl/metrics.json strict JSON after a diverging run (lr=1e300)",
        "E",
        0 if strict else "non-strict",
        err,
        s,
        want_rc=0,
        note=f"run rc={rc}",
    )


# ---------------------------------------------------------------- F: SIGINT
def family_f():
    if not want("F"):
        return
    import signal

    for backend, model in (("fake", "fake-toy"), ("hf", TINY), ("paddle", TINY)):
        d = fresh(f"F-{backend}")
        data = toy_data(d, n=24)
        sp = d / "s.yaml"
        sp.write_text(
            spec_text(data, backend=backend, model=model, steps=400).replace(
                "checkpoint_every: 2", "checkpoint_every: 1000"
            )
        )
        run = d / "run"
        extra = ["--set", "backend.options.fake.step_delay=0.05"] if backend == "fake" else []
        cmd = [PY, "-m", "unified_prompt.cli", "run", str(sp), "--out", str(run), *extra]
        env = {**os.environ, "UNIFIED_PROMPT_PROGRESS": "0"}
        t = time.time()
        proc = subprocess.Popen(
            cmd, cwd=WT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            ev = run / "events.jsonl"
            if ev.exists() and ev.read_text().count('"type": "step"') >= 3:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=60)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            _out, err = proc.communicate()
            rc = "hang"
        saved = (run / "checkpoints" / "latest").exists()
        record(
            f"F1 SIGINT during {backend} training",
            "F",
            rc,
            err,
            time.time() - t,
            want_rc=130,
            extra_ok=saved,
            note=f"checkpoint saved: {saved}",
        )


# ---------------------------------------------------------------- G: metrics
def family_g():
    if not want("G"):
        return
    code = (
        "from unified_prompt.metrics import bleu, rouge_l, generation_metrics as g;"
        "print(bleu(['今天天气很好我们去公园散步'], ['今天天气很好我们去公园跑步']),"
        " rouge_l(['今天天气很好我们去公园散步'], ['今天天气很好我们去公园跑步']))"
    )
    p = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=WT)
    vals = p.stdout.split()
    ok = len(vals) == 2 and float(vals[0]) > 80 and float(vals[1]) > 0.8
    record(
        "G1 BLEU / ROUGE-L on Chinese",
        "G",
        0 if ok else "wrong",
        p.stderr,
        0,
        want_rc=0,
        note=f"bleu, rouge_l = {vals}",
    )


if __name__ == "__main__":
    for fam in (family_a, family_b, family_c, family_d, family_e, family_f, family_g):
        try:
            fam()
        except Exception as exc:  # the harness itself failed
            import traceback

            traceback.print_exc()
            print(f"HARNESS FAILED in {fam.__name__}: {exc}")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    out = SCRATCH / f"tally-{int(time.time())}.json"
    out.write_text(json.dumps(ROWS, indent=1, ensure_ascii=False))
    n_ok = sum(r["ok"] for r in ROWS)
    print(f"\n{n_ok}/{len(ROWS)} handled well; rows in {out}")
