"""The core's data parallelism, with ranks as threads and the numpy fake backend:
sharding and loss weights, the same trajectory on 1 or N ranks, sharded evaluation,
rank-0-only writes, resume, and the launcher environment."""

import dataclasses
import json

import numpy as np
import pytest
import yaml

from unified_prompt.distributed import (
    PeerError,
    ShardedInference,
    SingleWorld,
    decide_on_main,
    launch_from_env,
    local_micro_batches,
    shard_bounds,
)
from unified_prompt.errors import CapabilityError, RunDirectoryError
from unified_prompt.registry import create_backend
from unified_prompt.runner import Experiment
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.testing.worlds import run_ranks
from unified_prompt.training import Trainer


class FakeSuite(BackendConformance):
    backend_name = "fake"


def test_shards_cover_every_item_once_and_weights_sum_to_one():
    for n in range(0, 12):
        for size in (1, 2, 3, 5):
            spans = [shard_bounds(n, r, size) for r in range(size)]
            assert [i for a, b in spans for i in range(a, b)] == list(range(n))
            assert max(b - a for a, b in spans) - min(b - a for a, b in spans) <= 1
    micro = [[4, 7, 1], [9]]  # the last micro-batch has fewer items than ranks
    shares = run_ranks(2, lambda w: local_micro_batches(micro, w))
    assert shares[0] == [([4, 7], 0.5), ([9], 0.25)]
    assert shares[1] == [([1], 0.25), ([9], 0.0)]  # nothing of its own: weight 0, same calls
    assert sum(w for rank in shares for _, w in rank) == 1.0
    assert local_micro_batches(micro, SingleWorld()) == [([4, 7, 1], 0.75), ([9], 0.25)]


def test_collectives_built_on_arrays():
    def work(world):
        ragged = world.gather_arrays(np.arange(world.rank + 1, dtype=np.float32))
        objs = world.gather_json({"rank": world.rank, "text": "差" * world.rank})
        sent = world.broadcast_json({"from": "main"} if world.is_main else None)
        return [a.tolist() for a in ragged], objs, sent, world.any(world.rank == 2)

    for ragged, objs, sent, stop in run_ranks(3, work):
        assert ragged == [[0.0], [0.0, 1.0], [0.0, 1.0, 2.0]]
        assert [o["text"] for o in objs] == ["", "差", "差差"]
        assert sent == {"from": "main"} and stop is True


def test_an_error_on_rank_0_reaches_every_rank():
    def work(world):
        def decide():
            raise RunDirectoryError("--out x already holds a finished run")
        try:
            decide_on_main(world, decide)
        except RunDirectoryError as exc:
            return "main", str(exc), exc.exit_code
        except PeerError as exc:
            return "peer", str(exc), exc.exit_code

    main, peer = run_ranks(2, work)
    assert main == ("main", "--out x already holds a finished run", 2)
    assert peer == ("peer", "rank 0: --out x already holds a finished run", 2)


def test_launcher_environment():
    assert launch_from_env({}) is None
    torchrun = launch_from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (torchrun.launcher, torchrun.rank, torchrun.size, torchrun.local_rank) == \
        ("torchrun", 3, 4, 1)
    paddle = launch_from_env({"PADDLE_TRAINER_ID": "1", "PADDLE_TRAINERS_NUM": "2",
                              "PADDLE_LOCAL_RANK": "1"})
    assert (paddle.launcher, paddle.rank, paddle.size) == ("paddle", 1, 2)


def _trainer(world, steps=6, batch_size=5, **settings):
    backend = create_backend("fake")
    model = backend.load_model("fake-train")
    suite = FakeSuite()
    builder = suite.builder(backend, model, "lora", max_steps=steps, batch_size=batch_size,
                            lr=0.05, warmup_ratio=0, **settings)
    setup = dataclasses.replace(suite.setup_for(builder), world=world)
    session = backend.start_training(model, setup)
    log = []
    trainer = Trainer(session, builder.train_items(synthetic_examples()), setup.method, seed=1,
                      progress=False, world=world, log=lambda kind, **d: log.append((kind, d)))
    return trainer, log


@pytest.mark.parametrize("ranks,grad_accum", [(2, 1), (3, 2)])
def test_same_trajectory_on_one_or_several_ranks(ranks, grad_accum):
    """batch 5 over 3 ranks leaves uneven shares, and 12 items leave a short last batch."""

    def train(world):
        trainer, log = _trainer(world, grad_accum=grad_accum)
        trainer.run()
        return [d["loss"] for k, d in log if k == "step"], trainer.session.trainable_state()

    ((one_losses, one_state),) = run_ranks(1, train)
    for losses, state in run_ranks(ranks, train):
        np.testing.assert_allclose(losses, one_losses, rtol=1e-12)
        for k, v in one_state.items():
            np.testing.assert_allclose(state[k], v, rtol=1e-6, atol=1e-7)


def test_a_cancel_on_one_rank_stops_every_rank_at_the_same_step():
    from unified_prompt.jobs import JobCancelledError

    class Ctx:
        def __init__(self, rank):
            self.rank, self.calls = rank, 0

        @property
        def cancelled(self):
            self.calls += 1
            return self.rank == 1 and self.calls >= 3

        def emit(self, *a, **k):
            pass

    def train(world):
        trainer, _ = _trainer(world)
        try:
            trainer.run(Ctx(world.rank))
        except JobCancelledError:
            return trainer.state.step

    assert run_ranks(2, train) == [2, 2]


@pytest.fixture
def fake_spec(toy_spec):
    data = yaml.safe_load(toy_spec.read_text())
    data["finetune"] |= {"batch_size": 5, "max_steps": 8, "eval_every": 4,
                         "checkpoint_every": 3}
    return data


def test_a_run_in_two_ranks_matches_one_and_only_rank_0_writes(tmp_path, fake_spec):
    single = Experiment.from_dict(fake_spec).run(out=tmp_path / "one", progress=False)

    def work(world):
        out = tmp_path / "two"
        return Experiment.from_dict(fake_spec).run(out=out, progress=False, world=world)

    main, other = run_ranks(2, work)
    assert main.metrics["metrics"] == single.metrics["metrics"] == other.metrics["metrics"]
    assert [r["prediction"] for r in main.predictions] == \
        [r["prediction"] for r in single.predictions]
    for a, b in zip(main.predictions, single.predictions, strict=True):
        for label, p in a["scores"].items():
            assert p == pytest.approx(b["scores"][label], rel=1e-6)
    assert main.metrics["training"]["processes"] == 2
    events = [json.loads(x) for x in (tmp_path / "two" / "events.jsonl").read_text().splitlines()]
    assert sum(e["type"] == "step" for e in events) == 8  # one writer: no line twice
    one = [e["loss"] for e in (json.loads(x) for x in
                               (tmp_path / "one" / "events.jsonl").read_text().splitlines())
           if e["type"] == "step"]
    np.testing.assert_allclose([e["loss"] for e in events if e["type"] == "step"], one,
                               rtol=1e-12)
    dev = [e["metrics"] for e in events if e["type"] == "eval" and e.get("split") == "dev"]
    assert len(dev) == 2


def test_resume_in_two_ranks_after_a_crash(tmp_path, fake_spec):
    straight = Experiment.from_dict(fake_spec).run(out=tmp_path / "straight", progress=False)
    out = tmp_path / "crashed"

    class CrashError(Exception):
        pass

    def crash_after_checkpoint(world):
        exp = Experiment.from_dict(fake_spec)
        import unified_prompt.training as training

        original = training.Trainer._save

        def save_then_die(self, state):
            original(self, state)
            raise CrashError()

        training.Trainer._save = save_then_die
        try:
            exp.run(out=out, progress=False, world=world)
        finally:
            training.Trainer._save = original

    with pytest.raises(CrashError):
        run_ranks(1, crash_after_checkpoint)
    assert (out / "checkpoints" / "latest").exists() and not (out / "metrics.json").exists()
    resumed = run_ranks(2, lambda w: Experiment.from_dict(fake_spec).run(
        out=out, resume=True, progress=False, world=w))
    for r in resumed:
        assert r.metrics["metrics"] == straight.metrics["metrics"]
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["type"] == "resume"] == [3]
    # a finished run: every rank gets rank 0's metrics, nobody trains again
    again = run_ranks(2, lambda w: Experiment.from_dict(fake_spec).run(
        out=out, resume=True, progress=False, world=w))
    assert [r.metrics["metrics"] for r in again] == [straight.metrics["metrics"]] * 2


def test_a_bad_run_directory_stops_every_rank(tmp_path, fake_spec):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def work(world):
        Experiment.from_dict(fake_spec).run(out=out, progress=False, world=world)

    with pytest.raises((RunDirectoryError, PeerError), match="holds no run"):
        run_ranks(2, work)
    assert (out / "notes.txt").read_text() == "mine"


def test_sharded_evaluation_gathers_in_order():
    backend = create_backend("fake")
    model = backend.load_model("fake-train")
    suite = FakeSuite()
    builder = suite.builder(backend, model)
    prompts = builder.render(synthetic_examples()[:5])
    words = builder.verbalizer.flat_words
    whole = backend.score(model, prompts, words)

    def work(world):
        scores = ShardedInference(backend, world).score(model, prompts, words)
        return scores.logprob

    for lp in run_ranks(3, work):
        np.testing.assert_array_equal(lp, whole.logprob)
    many = run_ranks(7, work)  # more ranks than prompts: some score nothing
    np.testing.assert_array_equal(many[6], whole.logprob)


def test_fsdp_on_a_backend_without_it_is_refused(toy_spec):
    proc_spec = yaml.safe_load(toy_spec.read_text())
    proc_spec["finetune"]["parallel"] = "fsdp"
    with pytest.raises(CapabilityError, match=r"cannot train with finetune\.parallel .fsdp."):
        Experiment.from_dict(proc_spec).run(progress=False)


def test_backends_say_what_runs_in_several_processes(cli):
    caps = json.loads(cli("backends", "--json").stdout)
    assert caps["hf"]["parallel"] == ["ddp", "fsdp"] and caps["paddle"]["parallel"] == ["ddp"]
    assert caps["openai"]["parallel"] == [] and caps["hf"]["launchers"]
    text = cli("backends").stdout
    assert "parallel: ddp, fsdp (launch: torchrun" in text
    assert "parallel: one process only" in text


def test_nproc_inside_a_launched_process_is_refused(cli, toy_spec):
    proc = cli("run", str(toy_spec), "--nproc", "2",
               env={"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    assert proc.returncode == 2 and "already started by a launcher" in proc.stderr
