"""The conformance suite every backend passes, shipped as importable pytest classes.

A backend's test module subclasses `BackendConformance` in a few lines:

    class TestHF(BackendConformance):
        backend_name = "hf"
        @classmethod
        def model_ref(cls) -> str:
            return str(tiny_model("llama"))

A method or primitive the backend does not declare in its Capabilities is skipped with a
reason; one it declares must pass. `test_standard_tests_not_overridden` stops a subclass
from quietly replacing a standard test with one that does nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from unified_prompt.backend import Backend, GenerationParams, ModelKind, TrainSetup
from unified_prompt.config import ExperimentSpec
from unified_prompt.data.example import Example
from unified_prompt.errors import BackendError, CapabilityError, UnifiedPromptError
from unified_prompt.methods import LOCAL_METHODS
from unified_prompt.prompts.builder import PromptBuilder
from unified_prompt.registry import create_backend

#: Small, fast settings per method; lrs high enough to move a tiny model in a few steps.
METHOD_SETTINGS: dict[str, dict[str, Any]] = {
    "prompt_tuning": {"num_virtual_tokens": 4, "lr": 0.05, "init": "random"},
    "p_tuning": {"num_virtual_tokens": 4, "encoder_hidden": 16, "lr": 0.01},
    "prefix_tuning": {"num_virtual_tokens": 4, "lr": 0.01},
    "lora": {"r": 4, "alpha": 8, "lr": 0.01},
    "full": {"lr": 0.001},
}

POSITIVE = ["a wonderful, moving film", "great acting and a clever story", "I loved every minute",
            "charming and funny", "a triumph", "beautifully shot and heartfelt"]
NEGATIVE = ["a dull, lifeless mess", "boring and far too long", "I hated it",
            "clumsy writing and bad acting", "a disaster", "tedious and forgettable"]


def synthetic_examples() -> list[Example]:
    out = []
    for i, (p, n) in enumerate(zip(POSITIVE, NEGATIVE, strict=False)):
        out.append(Example(f"p{i}", {"text": p}, label="positive"))
        out.append(Example(f"n{i}", {"text": n}, label="negative"))
    return out


class BackendConformance:
    """Subclass and set `backend_name`; override `model_ref` (a tiny model)."""

    backend_name: ClassVar[str]
    backend_options: ClassVar[dict[str, Any]] = {}
    #: Verbalizer with single- and multi-token words, and a Chinese word.
    verbalizer: ClassVar[dict[str, list[str]]] = {
        "positive": ["good", "absolutely wonderful"], "negative": ["bad", "差"]}
    template: ClassVar[str] = "Review: {text}\nSentiment: {mask}"
    masked_template: ClassVar[str] = "{text} It was {mask}."
    train_steps: ClassVar[int] = 8

    @classmethod
    def model_ref(cls) -> str:
        raise NotImplementedError("set model_ref() to a tiny model for this backend")

    # -- fixtures --------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def backend(cls) -> Backend:
        backend = create_backend(cls.backend_name, dict(cls.backend_options))
        yield backend
        backend.close()

    @pytest.fixture(scope="class")
    @classmethod
    def model(cls, backend: Backend) -> Any:
        return backend.load_model(cls.model_ref())

    def spec(self, backend: Backend, model: Any, method: str = "none",
             task: str = "classification", **settings: Any) -> ExperimentSpec:
        kind = backend.model_info(model).kind
        template = self.masked_template if kind == ModelKind.MASKED else self.template
        finetune = {"method": method, **(METHOD_SETTINGS.get(method, {}) if method != "none"
                                         else {}), **settings}
        data: dict[str, Any] = {
            "task": task, "seed": 7, "backend": {"name": self.backend_name, "model": "x"},
            "data": {"dataset": "rotten_tomatoes"},
            "prompt": {"template": template}, "finetune": finetune}
        if task == "classification":
            data["prompt"]["verbalizer"] = self.verbalizer
        return ExperimentSpec.model_validate(data)

    def builder(self, backend: Backend, model: Any, method: str = "none",
                task: str = "classification", **settings: Any) -> PromptBuilder:
        return PromptBuilder(self.spec(backend, model, method, task, **settings))

    def setup_for(self, builder: PromptBuilder) -> TrainSetup:
        spec = builder.spec
        v = builder.verbalizer
        return TrainSetup(method=spec.finetune, task=spec.model_task, seed=spec.seed,
                          words=v.flat_words if v else (), word_label=v.word_label if v else (),
                          n_labels=len(v.labels) if v else 0, word_score=spec.prompt.word_score,
                          soft_slots=builder.template.soft_slots, total_steps=self.train_steps)

    def require_method(self, backend: Backend, model: Any, method: str) -> None:
        if not backend.model_capabilities(model).supports_method(method):
            pytest.skip(f"backend {self.backend_name!r} does not declare method {method!r}")
        kind = backend.model_info(model).kind
        if kind not in backend.model_capabilities(model).model_kinds:
            pytest.skip(f"model kind {kind.value} not supported")

    def train(self, backend: Backend, model: Any, method: str, steps: int | None = None,
              task: str = "classification"):
        builder = self.builder(backend, model, method, task)
        session = backend.start_training(model, self.setup_for(builder))
        items = builder.train_items(synthetic_examples())
        losses = []
        for _ in range(steps if steps is not None else self.train_steps):
            losses.append(session.forward_backward(items[:6], 1.0))
            session.optimizer_step(METHOD_SETTINGS[method]["lr"], 1.0)
        return session, builder, items, losses

    # -- the standard tests ----------------------------------------------------------
    def test_capabilities_are_declared(self, backend: Backend) -> None:
        caps = backend.capabilities
        assert caps.model_kinds, "a backend declares the model kinds it loads"
        assert caps.methods <= set(LOCAL_METHODS), f"unknown methods {caps.methods}"
        assert backend.name == self.backend_name

    def test_model_info(self, backend: Backend, model: Any) -> None:
        info = backend.model_info(model)
        assert info.kind in backend.model_capabilities(model).model_kinds
        assert info.total_params is None or info.total_params > 0

    def test_scores_are_finite_and_shaped(self, backend: Backend, model: Any) -> None:
        if not backend.model_capabilities(model).score:
            pytest.skip("backend does not score label words")
        builder = self.builder(backend, model)
        prompts = builder.render(synthetic_examples()[:3])
        words = builder.verbalizer.flat_words
        scores = backend.score(model, prompts, words, batch_size=2)
        assert scores.logprob.shape == (3, len(words))
        assert scores.n_tokens.shape == (3, len(words))
        assert np.all(np.isfinite(scores.logprob))
        assert np.all(scores.logprob <= 1e-6), "log-probabilities are <= 0"
        assert np.all(scores.n_tokens >= 1)
        if backend.model_capabilities(model).exact_multi_token:
            multi = words.index("absolutely wonderful")
            assert scores.n_tokens[0, multi] >= 2, "a two-word label word spans several tokens"

    def test_scores_do_not_depend_on_batch(self, backend: Backend, model: Any) -> None:
        if not backend.model_capabilities(model).score:
            pytest.skip("backend does not score label words")
        builder = self.builder(backend, model)
        prompts = builder.render(synthetic_examples()[:4])
        words = builder.verbalizer.flat_words
        together = backend.score(model, prompts, words, batch_size=4).logprob
        alone = np.concatenate([backend.score(model, [p], words, batch_size=1).logprob
                                for p in prompts])
        np.testing.assert_allclose(together, alone, atol=1e-4, rtol=0)

    def test_predictions_stay_in_label_space(self, backend: Backend, model: Any) -> None:
        from unified_prompt.evaluation import Evaluator

        builder = self.builder(backend, model)
        evaluator = Evaluator(backend, builder, builder.spec, progress=False)
        metrics, rows = evaluator.classify(model, synthetic_examples())
        assert {r["prediction"] for r in rows} <= set(builder.verbalizer.labels)
        assert 0.0 <= metrics["accuracy"] <= 1.0
        for r in rows:
            assert sum(r["scores"].values()) == pytest.approx(1.0, abs=1e-4)

    def test_generate_returns_text(self, backend: Backend, model: Any) -> None:
        if not backend.model_capabilities(model).generate:
            pytest.skip("backend does not generate")
        builder = self.builder(backend, model, task="generation")
        prompts = builder.render(synthetic_examples()[:2])
        params = GenerationParams(max_new_tokens=5, stop=())
        out = backend.generate(model, prompts, params, batch_size=2)
        assert len(out) == 2 and all(isinstance(t, str) for t in out)
        again = backend.generate(model, prompts, params, batch_size=1)
        assert out == again, "greedy generation is deterministic and batch-independent"

    @pytest.mark.parametrize("method", LOCAL_METHODS)
    def test_training_lowers_the_loss(self, backend: Backend, model: Any, method: str) -> None:
        self.require_method(backend, model, method)
        session, _, items, losses = self.train(backend, model, method)
        before = losses[0]
        after = session.loss(items[:6])
        assert np.isfinite(before) and np.isfinite(after)
        assert after < before, f"{method}: loss {before:.4f} -> {after:.4f}"
        assert 0 < session.trainable_params <= session.total_params

    @pytest.mark.parametrize("method", LOCAL_METHODS)
    def test_same_seed_same_numbers(self, backend: Backend, model: Any, method: str) -> None:
        self.require_method(backend, model, method)
        first = self.train(backend, model, method, steps=3)
        second = self.train(backend, model, method, steps=3)
        assert first[3] == second[3], "the same seed gives the same losses"
        a, b = first[0].trainable_state(), second[0].trainable_state()
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])

    @pytest.mark.parametrize("method", LOCAL_METHODS)
    def test_adapter_round_trip(self, backend: Backend, model: Any, method: str,
                                tmp_path: Path) -> None:
        self.require_method(backend, model, method)
        if not backend.model_capabilities(model).adapters:
            pytest.skip("backend does not save adapters")
        session, builder, _, _ = self.train(backend, model, method, steps=2)
        session.train_mode(False)
        prompts = builder.render(synthetic_examples()[:3])
        words = builder.verbalizer.flat_words
        trained = backend.score(session.model, prompts, words).logprob
        session.save_adapter(tmp_path / "adapter")
        loaded = backend.load_adapter(model, tmp_path / "adapter")
        np.testing.assert_allclose(backend.score(loaded, prompts, words).logprob, trained,
                                   atol=1e-5, rtol=0)
        base = backend.score(model, builder.render(synthetic_examples()[:3]), words).logprob \
            if method in ("lora", "full") else None
        if base is not None:
            assert not np.allclose(base, trained), "the base model is left untouched"

    @pytest.mark.parametrize("method", LOCAL_METHODS)
    def test_checkpoint_resumes_exactly(self, backend: Backend, model: Any, method: str,
                                        tmp_path: Path) -> None:
        self.require_method(backend, model, method)
        straight = self.train(backend, model, method, steps=4)[0].trainable_state()
        session, builder, items, _ = self.train(backend, model, method, steps=2)
        session.save_checkpoint(tmp_path / "ckpt")
        resumed = backend.start_training(model, self.setup_for(builder))
        resumed.load_checkpoint(tmp_path / "ckpt")
        for _ in range(2):
            resumed.forward_backward(items[:6], 1.0)
            resumed.optimizer_step(METHOD_SETTINGS[method]["lr"], 1.0)
        state = resumed.trainable_state()
        for k in straight:
            np.testing.assert_allclose(state[k], straight[k], atol=1e-6, rtol=1e-5)

    @pytest.mark.parametrize("method", LOCAL_METHODS)
    def test_trainable_state_round_trips(self, backend: Backend, model: Any,
                                         method: str) -> None:
        self.require_method(backend, model, method)
        session, builder, items, _ = self.train(backend, model, method, steps=1)
        state = session.trainable_state()
        assert all(v.dtype == np.float32 for v in state.values())
        other = backend.start_training(model, self.setup_for(builder))
        other.load_trainable_state(state)
        assert other.loss(items[:4]) == pytest.approx(session.loss(items[:4]), abs=1e-5)

    def test_generation_training_lowers_the_loss(self, backend: Backend, model: Any) -> None:
        methods = [m for m in ("lora", "full", "prompt_tuning")
                   if backend.model_capabilities(model).supports_method(m)]
        if not methods or not backend.model_capabilities(model).generate:
            pytest.skip("backend trains no method used for generation here")
        builder = self.builder(backend, model, methods[0], task="generation")
        session = backend.start_training(model, self.setup_for(builder))
        examples = [Example(f"g{i}", {"text": t}, target="the answer")
                    for i, t in enumerate(POSITIVE)]
        items = builder.train_items(examples)
        before = session.loss(items)
        for _ in range(self.train_steps):
            session.forward_backward(items, 1.0)
            session.optimizer_step(METHOD_SETTINGS[methods[0]]["lr"], 1.0)
        assert session.loss(items) < before

    # -- raw text (OpenAI-compatible serving) and search primitives ---------------------
    def require_raw_text(self, backend: Backend, model: Any) -> None:
        if not backend.model_capabilities(model).raw_text:
            pytest.skip(f"backend {self.backend_name!r} does not declare raw_text")
        if backend.model_info(model).kind == ModelKind.MASKED:
            pytest.skip("raw-text log-probs and continuation are for causal models")

    def test_echo_log_probs_reproduce_label_word_scores(self, backend: Backend,
                                                        model: Any) -> None:
        """A client scoring by echo (prompt + word, summing the word's token log-probs)
        gets exactly what score() gives on the same model."""
        self.require_raw_text(backend, model)
        builder = self.builder(backend, model)
        words = ["good", "absolutely wonderful"]
        for prompt in builder.render(synthetic_examples()[:2]):
            direct = backend.score(model, [prompt], words).logprob[0]
            prefix = prompt.prefix_text()
            texts = [prefix + prompt.mask_lead() + w for w in words]
            for text, tokens, expected in zip(texts, backend.text_logprobs(model, texts),
                                              direct, strict=True):
                assert "".join(t.token for t in tokens) == text
                assert [t.offset for t in tokens] == sorted(t.offset for t in tokens)
                echoed = sum(t.logprob for t in tokens if t.offset >= len(prefix))
                assert echoed == pytest.approx(float(expected), abs=1e-4)

    def test_text_logprobs_report_alternatives(self, backend: Backend, model: Any) -> None:
        self.require_raw_text(backend, model)
        text = "Review: a fine film\nSentiment: good"
        (plain,), (top,) = (backend.text_logprobs(model, [text]),
                            backend.text_logprobs(model, [text], top_k=3))
        assert [t.logprob for t in plain] == pytest.approx([t.logprob for t in top], abs=1e-5)
        for t in top[1:]:
            assert t.logprob is not None and t.logprob <= 1e-6
            assert len(t.top) == 3 and t.top[0][1] >= t.top[1][1] >= t.top[2][1]
            assert t.top[0][1] >= t.logprob - 1e-5, "the best alternative is at least as likely"

    def test_generate_text_reports_tokens_and_stops(self, backend: Backend,
                                                    model: Any) -> None:
        self.require_raw_text(backend, model)
        texts = ["Review: a fine film\nSentiment:", "Hello"]
        params = GenerationParams(max_new_tokens=6, stop=())
        free = backend.generate_text(model, texts, params, top_k=2, batch_size=2)
        assert free == backend.generate_text(model, texts, params, top_k=2, batch_size=1), (
            "greedy raw-text generation is deterministic and batch-independent")
        for gen in free:
            assert gen.prompt_tokens >= 1
            assert gen.text == "".join(t.token for t in gen.tokens)
            assert gen.finish_reason == "length" or len(gen.tokens) < 6
            assert all(t.logprob is not None and t.logprob <= 1e-6 for t in gen.tokens)
            assert all(len(t.top) == 2 for t in gen.tokens)
        gen = next(g for g in free if g.text.strip())
        stop = next(t.token for t in gen.tokens if t.token.strip())
        (cut,) = backend.generate_text(model, [texts[free.index(gen)]],
                                       GenerationParams(max_new_tokens=6, stop=(stop,)))
        assert cut.finish_reason == "stop" and stop not in cut.text
        assert gen.text.startswith(cut.text)

    def test_render_chat_keeps_every_message(self, backend: Backend, model: Any) -> None:
        self.require_raw_text(backend, model)
        messages = [{"role": "system", "content": "Answer in one word."},
                    {"role": "user", "content": "Is this positive? a fine film"}]
        text = backend.render_chat(model, messages)
        assert isinstance(text, str)
        assert all(m["content"] in text for m in messages)
        assert text.index(messages[0]["content"]) < text.index(messages[1]["content"])

    def test_vocabulary_and_tokenize_agree(self, backend: Backend, model: Any) -> None:
        if not backend.model_capabilities(model).token_gradients:
            pytest.skip(f"backend {self.backend_name!r} does not declare token_gradients")
        vocab = backend.vocabulary(model)
        info = backend.model_info(model)
        assert info.vocab_size is None or len(vocab) >= info.vocab_size
        ids = backend.tokenize(model, "a fine film")
        assert ids and all(0 <= i < len(vocab) for i in ids)
        for i in ids:
            assert backend.tokenize(model, vocab[i]) == [i], (
                f"token {i} decodes alone to {vocab[i]!r}, which must tokenize back to it")

    def test_token_gradients_are_shaped_and_deterministic(self, backend: Backend,
                                                          model: Any) -> None:
        if not backend.model_capabilities(model).token_gradients:
            pytest.skip(f"backend {self.backend_name!r} does not declare token_gradients")
        kind = backend.model_info(model).kind
        base = self.masked_template if kind == ModelKind.MASKED else self.template
        spec = self.spec(backend, model, "prompt_tuning", num_virtual_tokens=1)
        data = spec.model_dump(mode="json", exclude_none=True)
        data["prompt"]["template"] = "{soft:2} " + base
        builder = PromptBuilder(ExperimentSpec.model_validate(data))
        setup = self.setup_for(builder)
        items = builder.train_items(synthetic_examples()[:4])
        vocab = backend.vocabulary(model)
        triggers = {0: backend.tokenize(model, "the film")[:2]}
        if len(triggers[0]) < 2:
            triggers[0] = triggers[0] * 2
        grads = backend.token_gradients(model, items, setup, triggers)
        again = backend.token_gradients(model, items, setup, triggers)
        assert set(grads) == {0}
        g = np.asarray(grads[0])
        assert g.shape == (2, len(vocab))
        assert np.all(np.isfinite(g)) and np.ptp(g) > 0
        np.testing.assert_allclose(g, np.asarray(again[0]), rtol=1e-5, atol=1e-6)

    def test_unknown_model_is_a_core_error(self, backend: Backend, tmp_path: Path) -> None:
        with pytest.raises(UnifiedPromptError):
            backend.load_model(str(tmp_path / "no-such-model"))

    def test_framework_failure_is_a_core_error(self, backend: Backend, model: Any,
                                               tmp_path: Path) -> None:
        """A checkpoint whose weight files are corrupt is rejected by the framework's own
        reader (safetensors, numpy, paddle); that error leaves the backend as a core error
        naming the backend, with the framework's exception chained."""
        caps = backend.model_capabilities(model)
        methods = [m for m in LOCAL_METHODS if caps.supports_method(m)]
        if not methods:
            pytest.skip(f"backend {self.backend_name!r} trains no local method")
        self.require_method(backend, model, methods[0])
        session, builder, _, _ = self.train(backend, model, methods[0], steps=1)
        session.save_checkpoint(tmp_path / "ckpt")
        corrupted = [f for f in (tmp_path / "ckpt").rglob("*")
                     if f.is_file() and f.suffix != ".json"]
        assert corrupted, "save_checkpoint writes weight files"
        for f in corrupted:
            f.write_bytes(b"\x00not a weight file\xff" * 3)
        fresh = backend.start_training(model, self.setup_for(builder))
        with pytest.raises(UnifiedPromptError) as err:
            fresh.load_checkpoint(tmp_path / "ckpt")
        if isinstance(err.value, BackendError):
            assert str(err.value).startswith(f"{self.backend_name} backend: "), str(err.value)
            assert err.value.__cause__ is not None, "the framework's exception stays chained"
            assert not isinstance(err.value.__cause__, UnifiedPromptError)

    def test_undeclared_method_raises_capability_error(self, backend: Backend,
                                                       model: Any) -> None:
        caps = backend.model_capabilities(model)
        missing = [m for m in LOCAL_METHODS if not caps.supports_method(m)]
        if not missing:
            pytest.skip("backend declares every local method")
        builder = self.builder(backend, model, missing[0])
        with pytest.raises(CapabilityError):
            backend.start_training(model, self.setup_for(builder))

    def test_end_to_end_run_writes_the_contract(self, backend: Backend, model: Any,
                                                tmp_path: Path) -> None:
        import json

        from unified_prompt.runner import Experiment

        data = tmp_path / "data.jsonl"
        data.write_text("".join(json.dumps({"text": e.text, "label": e.label}) + "\n"
                                for e in synthetic_examples()), encoding="utf-8")
        spec = self.spec(backend, model).model_dump(mode="json", exclude_none=True)
        spec["backend"] = {"name": self.backend_name, "model": self.model_ref(),
                           "options": {self.backend_name: dict(self.backend_options)}}
        spec["data"] = {"files": {"test": str(data)}}
        result = Experiment.from_dict(spec).run(out=tmp_path / "run", progress=False)
        metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
        assert metrics == json.loads(json.dumps(result.metrics))
        for key in ("backend", "model", "method", "task", "split", "n_examples", "metrics",
                    "trainable_params", "total_params", "train_seconds", "eval_seconds", "seed"):
            assert key in metrics
        assert metrics["n_examples"] == len(synthetic_examples())
        assert set(metrics["metrics"]) == {"accuracy", "macro_f1"}
        shutil.rmtree(tmp_path / "run")

    def test_standard_tests_not_overridden(self) -> None:
        for name in dir(BackendConformance):
            if name.startswith("test_"):
                assert getattr(type(self), name) is getattr(BackendConformance, name), (
                    f"{type(self).__name__} overrides the standard test {name}; fix the backend "
                    "or declare the capability missing instead")
