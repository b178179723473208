"""A reference backend in pure numpy, so the core's CI runs the whole conformance suite.

It is a real (tiny) model, not a mock: a log-bilinear language model over hashed word
tokens, p(next | context) = softmax(E tanh((W + scale*B A) mean(E[context]) + b)), with
hand-written gradients for prompt tuning, LoRA and full fine-tuning, Adam, checkpoints
and adapters. P-tuning and prefix tuning are deliberately absent, so the suite's
"missing capability skips with a reason" path is exercised too.

Model references: "fake", "fake-<anything>" (the name seeds the weights), or a folder
holding a fake.json written by `FakeBackend.write_model`.
"""

from __future__ import annotations

import json
import re
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from unified_prompt.backend import (
    Backend,
    BackendOptions,
    Capabilities,
    Generated,
    GenerationParams,
    ModelInfo,
    ModelKind,
    Progress,
    TokenLogprob,
    TrainItem,
    TrainSession,
    TrainSetup,
)
from unified_prompt.decoding import plain_chat
from unified_prompt.encoding import (
    SpecialIds,
    check_triggers,
    encode_causal,
    encode_continuation,
    soft_counts,
)
from unified_prompt.errors import CapabilityError, ModelNotFoundError, UserInputError
from unified_prompt.prompts.segments import Rendered
from unified_prompt.prompts.verbalizer import WordScores
from unified_prompt.sampling import nucleus_probs, repeat_for_n

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class FakeOptions(BackendOptions):
    vocab_size: int = 512
    dim: int = 16
    max_length: int = 256
    step_delay: float = Field(0.0, ge=0, description="Seconds to sleep per optimizer step, so "
                              "tests can interrupt a training run part-way.")


@dataclass
class FakeModel:
    """Weights and any trained parts (soft vectors, LoRA factors)."""

    name: str
    E: np.ndarray
    W: np.ndarray
    b: np.ndarray
    soft: dict[int, np.ndarray] = field(default_factory=dict)
    lora_A: np.ndarray | None = None
    lora_B: np.ndarray | None = None
    lora_scale: float = 1.0
    vocab: dict[int, str] = field(default_factory=dict)

    def weight(self) -> np.ndarray:
        if self.lora_A is None or self.lora_B is None:
            return self.W
        return self.W + self.lora_scale * (self.lora_B @ self.lora_A)

    def copy(self) -> FakeModel:
        return FakeModel(self.name, self.E, self.W.copy(), self.b.copy(),
                         {k: v.copy() for k, v in self.soft.items()},
                         None if self.lora_A is None else self.lora_A.copy(),
                         None if self.lora_B is None else self.lora_B.copy(),
                         self.lora_scale, self.vocab)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))



def _pick(lp: np.ndarray, params: GenerationParams, rng: np.random.Generator | None) -> int:
    """Greedy, or a draw from the temperature / top_p distribution (`rng` seeded once per
    call, so a seed repeats a call's texts)."""
    if rng is None:
        return int(np.argmax(lp))
    p = nucleus_probs(lp[None], params.temperature, params.top_p)[0]
    return int(rng.choice(len(p), p=p))

class FakeBackend(Backend):
    name = "fake"
    capabilities = Capabilities(
        score=True, exact_multi_token=True, generate=True,
        methods=frozenset({"prompt_tuning", "lora", "full"}), adapters=True, top_tokens=True,
        token_gradients=True, raw_text=True,
        model_kinds=frozenset({ModelKind.CAUSAL}), parallel=frozenset({"ddp"}),
        notes=("numpy reference backend for tests; no p_tuning or prefix_tuning",
               "data parallel in a World it is given (threads in tests); no launcher"))
    Options = FakeOptions

    # -- tokenizer -------------------------------------------------------------------
    def _tokens(self, model: FakeModel, text: str) -> list[int]:
        ids = []
        for tok in _TOKEN.findall(text.lower()):
            i = 3 + zlib.crc32(tok.encode("utf-8")) % (self.options.vocab_size - 3)
            model.vocab.setdefault(i, tok)
            ids.append(i)
        return ids

    SPECIAL = SpecialIds(bos=1, eos=2, pad=0, add_bos=True)

    # -- models ----------------------------------------------------------------------
    @staticmethod
    def write_model(folder: Path, name: str = "fake-folder") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fake.json").write_text(json.dumps({"name": name}), encoding="utf-8")
        return folder

    def load_model(self, ref: str) -> FakeModel:
        name = ref
        path = Path(ref)
        if path.is_dir():
            if not (path / "fake.json").exists():
                raise ModelNotFoundError(f"{ref}: folder has no fake.json")
            name = json.loads((path / "fake.json").read_text(encoding="utf-8"))["name"]
        elif not (ref == "fake" or ref.startswith("fake-")):
            raise ModelNotFoundError(f"fake backend: unknown model {ref!r} (use 'fake' or "
                                     "'fake-<name>')")
        rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
        v, d = self.options.vocab_size, self.options.dim
        return FakeModel(name, rng.standard_normal((v, d)) * 0.5, rng.standard_normal((d, d)) * 0.5,
                         np.zeros(d))

    def model_info(self, model: FakeModel) -> ModelInfo:
        total = model.E.size + model.W.size + model.b.size
        return ModelInfo(name=model.name, kind=ModelKind.CAUSAL, total_params=total,
                         checksum=f"fake:{zlib.crc32(model.W.tobytes()):08x}",
                         tokenizer_checksum="fake-hash-tokenizer-v1",
                         vocab_size=self.options.vocab_size)

    # -- forward ---------------------------------------------------------------------
    def _context(self, model: FakeModel, prompt: Rendered) -> tuple[list[np.ndarray], list[int]]:
        """Context vectors in order, and the soft slot of each (-1 for real tokens)."""
        enc = encode_causal(prompt, lambda t: self._tokens(model, t), self.SPECIAL,
                            max_length=self.options.max_length, reserve=8)
        soft_at = dict((pos, slot) for slot, pos in enc.soft)
        seen: dict[int, int] = {}
        vecs, slots = [], []
        for pos, tok in enumerate(enc.ids):
            if pos in soft_at:
                slot = soft_at[pos]
                k = seen.get(slot, 0)
                seen[slot] = k + 1
                if slot not in model.soft:
                    raise UserInputError(f"prompt has soft slot {slot} but the model has no "
                                         "trained soft prompt for it")
                vecs.append(model.soft[slot][k])
                slots.append(slot * 100_000 + k)
            else:
                vecs.append(model.E[tok])
                slots.append(-1)
        return vecs, slots

    @staticmethod
    def _next(model: FakeModel, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = np.tanh(model.weight() @ h + model.b)
        return z, _log_softmax(model.E @ z)

    def _word_logprob(self, model: FakeModel, ctx: list[np.ndarray], word: list[int]) -> float:
        total, vecs = 0.0, list(ctx)
        for tok in word:
            _, lp = self._next(model, np.mean(vecs, axis=0))
            total += float(lp[tok])
            vecs.append(model.E[tok])
        return total

    def score(self, model: FakeModel, prompts: Sequence[Rendered], words: Sequence[str], *,
              batch_size: int = 16, progress: Progress | None = None) -> WordScores:
        logprob = np.zeros((len(prompts), len(words)))
        n_tokens = np.zeros((len(prompts), len(words)), dtype=np.int64)
        for i, prompt in enumerate(prompts):
            ctx, _ = self._context(model, prompt)
            for j, word in enumerate(words):
                ids = encode_continuation(prompt, word, lambda t: self._tokens(model, t))
                if not ids:
                    raise UserInputError(f"label word {word!r} has no tokens")
                logprob[i, j] = self._word_logprob(model, ctx, ids)
                n_tokens[i, j] = len(ids)
            if progress:
                progress(1)
        return WordScores(logprob, n_tokens)

    def generate(self, model: FakeModel, prompts: Sequence[Rendered], params: GenerationParams,
                 *, batch_size: int = 16, progress: Progress | None = None) -> list[str]:
        if params.n > 1:
            return repeat_for_n(self.generate, model, prompts, params, batch_size=batch_size,
                                progress=progress)
        rng = np.random.default_rng(params.seed) if params.temperature > 0 else None
        out = []
        for prompt in prompts:
            vecs, _ = self._context(model, prompt)
            words: list[str] = []
            for _ in range(params.max_new_tokens):
                _, lp = self._next(model, np.mean(vecs, axis=0))
                lp[:3] = -np.inf
                tok = _pick(lp, params, rng)
                words.append(model.vocab.get(tok, f"<{tok}>"))
                vecs.append(model.E[tok])
            text = " ".join(words)
            for stop in params.stop:
                if stop and stop in text:
                    text = text[: text.index(stop)]
            out.append(text)
            if progress:
                progress(1)
        return out

    def top_tokens(self, model: FakeModel, prompts: Sequence[Rendered], k: int, *,
                   batch_size: int = 16) -> list[list[tuple[str, float]]]:
        out = []
        for prompt in prompts:
            vecs, _ = self._context(model, prompt)
            _, lp = self._next(model, np.mean(vecs, axis=0))
            known = [i for i in np.argsort(-lp) if i in model.vocab][:k]
            out.append([(model.vocab[i], float(lp[i])) for i in known])
        return out

    # -- raw text --------------------------------------------------------------------
    def _spans(self, model: FakeModel, text: str) -> list[tuple[int, str, int]]:
        """(id, surface text with its leading whitespace, offset) per token."""
        out, prev = [], 0
        for m in _TOKEN.finditer(text):
            out.append((self._tokens(model, m.group())[0], text[prev:m.end()], prev))
            prev = m.end()
        return out

    def _alternatives(self, model: FakeModel, lp: np.ndarray, k: int) -> tuple:
        if k <= 0:
            return ()
        best = [int(i) for i in np.argsort(-lp)[:k]]
        return tuple((" " + model.vocab.get(i, f"<{i}>"), float(lp[i])) for i in best)

    def text_logprobs(self, model: FakeModel, texts: Sequence[str], *, top_k: int = 0,
                      batch_size: int = 16) -> list[tuple[TokenLogprob, ...]]:
        out = []
        for text in texts:
            vecs = [model.E[self.SPECIAL.bos]]
            tokens = []
            for n, (tok, surface, offset) in enumerate(self._spans(model, text)):
                _, lp = self._next(model, np.mean(vecs, axis=0))
                tokens.append(TokenLogprob(surface, None if n == 0 else float(lp[tok]), offset,
                                           self._alternatives(model, lp, top_k) if n else (), tok))
                vecs.append(model.E[tok])
            out.append(tuple(tokens))
        return out

    def generate_text(self, model: FakeModel, texts: Sequence[str], params: GenerationParams, *,
                      top_k: int = 0, batch_size: int = 16) -> list[Generated]:
        rng = np.random.default_rng(params.seed) if params.temperature > 0 else None
        out = []
        for text in texts:
            spans = self._spans(model, text)
            vecs = [model.E[self.SPECIAL.bos]] + [model.E[t] for t, _, _ in spans]
            produced, pieces, finish = [], "", "length"
            for _ in range(params.max_new_tokens):
                _, lp = self._next(model, np.mean(vecs, axis=0))
                lp[:3] = -np.inf
                tok = _pick(lp, params, rng)
                piece = " " + model.vocab.get(tok, f"<{tok}>")
                candidate = pieces + piece
                hit = [candidate.index(st) for st in params.stop if st and st in candidate]
                if hit:
                    pieces, finish = candidate[: min(hit)], "stop"
                    break
                produced.append(TokenLogprob(piece, float(lp[tok]), len(text) + len(pieces),
                                             self._alternatives(model, lp, top_k), tok))
                pieces = candidate
                vecs.append(model.E[tok])
            out.append(Generated(pieces, tuple(produced), finish, len(spans)))
        return out

    def render_chat(self, model: FakeModel, messages: Sequence[dict[str, str]]) -> str:
        return plain_chat(messages)

    # -- search primitives -----------------------------------------------------------
    def vocabulary(self, model: FakeModel) -> list[str]:
        """One word per id that tokenizes back to that id (found by hashing short made-up
        words), with a leading space like a BPE word token; ids 0-2 are the specials."""
        size = self.options.vocab_size
        cached = getattr(self, "_vocab", None)
        if cached is not None and len(cached) == size:
            return list(cached)
        words: list[str | None] = ["<pad>", "<bos>", "<eos>", *([None] * (size - 3))]
        missing, n = size - 3, 0
        consonants, vowels = "bdfgklmnprstvz", "aeiou"
        while missing:
            a, rest = divmod(n, len(consonants) * len(vowels))
            word = consonants[rest // len(vowels)] + vowels[rest % len(vowels)]
            while a:
                a, r = divmod(a - 1, len(consonants) * len(vowels))
                word += consonants[r // len(vowels)] + vowels[r % len(vowels)]
            i = 3 + zlib.crc32(word.encode("utf-8")) % (size - 3)
            if words[i] is None:
                words[i] = " " + word
                missing -= 1
            n += 1
        self._vocab = [str(w) for w in words]
        return list(self._vocab)

    def tokenize(self, model: FakeModel, text: str) -> list[int]:
        return self._tokens(model, text)

    def token_gradients(self, model: FakeModel, items: Sequence[TrainItem], setup: TrainSetup,
                        triggers: dict[int, list[int]]) -> dict[int, np.ndarray]:
        """g @ E.T per slot, g the gradient of the mean classification loss with respect to
        the trigger embeddings (the prompt-tuning gradient, evaluated at E[triggers])."""
        if setup.task != "classification":
            raise CapabilityError("fake backend: token gradients for classification only")
        work = model.copy()
        for slot, ids in triggers.items():
            work.soft[slot] = model.E[np.asarray(ids, dtype=int)].copy()
        check_triggers(items, triggers, len(model.E), lambda t: self._tokens(model, t))
        session = FakeSession.__new__(FakeSession)
        session.backend, session.model, session.setup = self, work, setup
        session.method = "prompt_tuning"
        acc = {f"soft.{slot}": np.zeros_like(v) for slot, v in work.soft.items()}
        for item in items:
            session._example_loss(item, acc, 1.0 / len(items))
        return {slot: acc[f"soft.{slot}"] @ model.E.T for slot in triggers}

    # -- training --------------------------------------------------------------------
    def start_training(self, model: FakeModel, setup: TrainSetup) -> FakeSession:
        objective = getattr(setup.method, "objective", None)
        if objective is not None and not objective.default:
            raise CapabilityError(f"finetune.objective {objective.name}: the fake backend "
                                  "trains cross_entropy only (hf and paddle train all three)")
        return FakeSession(self, model.copy(), setup)

    def load_adapter(self, model: FakeModel, path: Path) -> FakeModel:
        path = Path(path)
        if not (path / "fake_adapter.npz").exists():
            raise UserInputError(f"{path}: no fake_adapter.npz (not a fake-backend adapter)")
        new = model.copy()
        meta = json.loads((path / "fake_adapter.json").read_text(encoding="utf-8"))
        with np.load(path / "fake_adapter.npz") as data:
            _apply_state(new, {k: data[k] for k in data.files}, meta["method"],
                         meta.get("lora_scale", 1.0))
        return new


def _apply_state(model: FakeModel, state: dict[str, np.ndarray], method: str,
                 lora_scale: float) -> None:
    for key, value in state.items():
        if key.startswith("soft."):
            model.soft[int(key.split(".")[1])] = value.astype(np.float64)
        elif key == "lora.proj.A":
            model.lora_A = value.astype(np.float64)
        elif key == "lora.proj.B":
            model.lora_B = value.astype(np.float64)
        elif key == "W":
            model.W = value.astype(np.float64)
        elif key == "b":
            model.b = value.astype(np.float64)
        else:
            raise UserInputError(f"unknown trainable state {key!r} for method {method}")
    model.lora_scale = lora_scale


class FakeSession(TrainSession):
    def __init__(self, backend: FakeBackend, model: FakeModel, setup: TrainSetup) -> None:
        self.backend = backend
        self.model = model
        self.setup = setup
        self.method = setup.method.method
        rng = np.random.default_rng(setup.seed)
        d = model.W.shape[0]
        if self.method == "prompt_tuning":
            encode = lambda t: backend._tokens(model, t)  # noqa: E731
            probe = Rendered.of(list(setup.soft_slots))
            for slot, count in soft_counts(probe, encode).items():
                model.soft[slot] = rng.standard_normal((count, d)) * 0.5
        elif self.method == "lora":
            r = setup.method.r
            model.lora_A = rng.standard_normal((r, d)) / np.sqrt(d)
            model.lora_B = np.zeros((d, r))
            model.lora_scale = setup.method.alpha / r
        self.params = self._params()
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.adam = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in self.params.items()}
        self.t = 0
        self.trainable_params = int(sum(v.size for v in self.params.values()))
        info = backend.model_info(model)
        self.total_params = int(info.total_params or 0) + (
            self.trainable_params if self.method != "full" else 0)

    def _params(self) -> dict[str, np.ndarray]:
        m = self.model
        if self.method == "prompt_tuning":
            return {f"soft.{k}": v for k, v in m.soft.items()}
        if self.method == "lora":
            return {"lora.proj.A": m.lora_A, "lora.proj.B": m.lora_B}
        return {"W": m.W, "b": m.b}

    # -- gradients -------------------------------------------------------------------
    def _token_grads(self, ctx: list[np.ndarray], slots: list[int], word: list[int],
                     upstream: float, acc: dict[str, np.ndarray]) -> float:
        """Add d(upstream * sum log p(word | ctx))/d(params) into acc; return the sum."""
        m = self.model
        vecs, kinds = list(ctx), list(slots)
        total = 0.0
        W = m.weight()
        for tok in word:
            h = np.mean(vecs, axis=0)
            z, lp = self.backend._next(m, h)
            total += float(lp[tok])
            p = np.exp(lp)
            dz = upstream * (m.E[tok] - m.E.T @ p)
            du = dz * (1 - z * z)
            dW = np.outer(du, h)
            if self.method == "full":
                acc["W"] += dW
                acc["b"] += du
            elif self.method == "lora":
                acc["lora.proj.B"] += m.lora_scale * dW @ m.lora_A.T
                acc["lora.proj.A"] += m.lora_scale * m.lora_B.T @ dW
            elif self.method == "prompt_tuning":
                dh = (W.T @ du) / len(vecs)
                for kind in kinds:
                    if kind >= 0:
                        slot, k = divmod(kind, 100_000)
                        acc[f"soft.{slot}"][k] += dh
            vecs.append(m.E[tok])
            kinds.append(-1)
        return total

    def _example_loss(self, item: TrainItem, acc: dict[str, np.ndarray] | None,
                      weight: float) -> float:
        b, m, s = self.backend, self.model, self.setup
        ctx, slots = b._context(m, item.prompt)
        encode = lambda t: b._tokens(m, t)  # noqa: E731
        if s.task == "generation":
            ids = [*encode_continuation(item.prompt, item.target or "", encode), FakeBackend.SPECIAL.eos]
            lp = b._word_logprob(m, ctx, ids)
            if acc is not None:
                self._token_grads(ctx, slots, ids, -weight / len(ids), acc)
            return -lp / len(ids)
        space = s.label_space(item.task)
        words = [encode_continuation(item.prompt, w, encode) for w in space.words]
        wl = np.array([b._word_logprob(m, ctx, ids) for ids in words])
        n = np.array([len(ids) for ids in words], dtype=float)
        if space.word_score == "mean":
            wl = wl / n
        index = np.asarray(space.word_label)
        label = np.array([np.logaddexp.reduce(wl[index == j]) for j in range(space.n_labels)])
        log_p = label - np.logaddexp.reduce(label)
        loss = -float(log_p[item.label])
        if acc is not None:
            p = np.exp(log_p)
            d_label = p.copy()
            d_label[item.label] -= 1.0
            for w, ids in enumerate(words):
                j = index[w]
                d_word = d_label[j] * np.exp(wl[w] - label[j])
                if space.word_score == "mean":
                    d_word /= n[w]
                self._token_grads(ctx, slots, ids, weight * d_word, acc)
        return loss

    def forward_backward(self, batch: Sequence[TrainItem], weight: float = 1.0) -> float:
        per = weight / len(batch)
        losses = [self._example_loss(item, self.grads, per) for item in batch]
        return float(np.mean(losses))

    def loss(self, batch: Sequence[TrainItem]) -> float:
        return float(np.mean([self._example_loss(item, None, 0.0) for item in batch]))

    def sync_gradients(self) -> None:
        world = self.setup.world
        if world is None or world.size == 1:
            return
        names = sorted(self.grads)
        flat = world.all_reduce(np.concatenate([self.grads[k].ravel() for k in names]))
        start = 0
        for k in names:
            g = self.grads[k]
            g[...] = flat[start:start + g.size].reshape(g.shape)
            start += g.size

    def optimizer_step(self, lr: float, max_grad_norm: float | None) -> float | None:
        if self.backend.options.step_delay:
            time.sleep(self.backend.options.step_delay)
        norm = float(np.sqrt(sum(float((g * g).sum()) for g in self.grads.values())))
        scale = min(1.0, max_grad_norm / (norm + 1e-6)) if max_grad_norm else 1.0
        self.t += 1
        wd = self.setup.method.weight_decay
        for k, p in self.params.items():
            g = self.grads[k] * scale
            m1, m2 = self.adam[k]
            m1 *= 0.9
            m1 += 0.1 * g
            m2 *= 0.999
            m2 += 0.001 * g * g
            mhat = m1 / (1 - 0.9 ** self.t)
            vhat = m2 / (1 - 0.999 ** self.t)
            p *= 1 - lr * wd
            p -= lr * mhat / (np.sqrt(vhat) + 1e-8)
            self.grads[k][...] = 0.0
        return norm

    # -- state -----------------------------------------------------------------------
    def trainable_state(self) -> dict[str, np.ndarray]:
        return {k: v.astype(np.float32) for k, v in self.params.items()}

    def load_trainable_state(self, state: dict[str, np.ndarray]) -> None:
        for k, v in state.items():
            if k not in self.params:
                raise UserInputError(f"unexpected trainable state {k!r}")
            self.params[k][...] = v

    def save_checkpoint(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {f"p:{k}": v for k, v in self.params.items()}
        arrays |= {f"m1:{k}": v[0] for k, v in self.adam.items()}
        arrays |= {f"m2:{k}": v[1] for k, v in self.adam.items()}
        np.savez(path / "session.npz", **arrays)
        (path / "session.json").write_text(json.dumps({"t": self.t}), encoding="utf-8")

    def load_checkpoint(self, path: Path) -> None:
        from unified_prompt.untrusted import load_npz, read_json_object

        path = Path(path)
        data = load_npz(path / "session.npz")
        try:
            for k in self.params:
                self.params[k][...] = data[f"p:{k}"]
                self.adam[k][0][...] = data[f"m1:{k}"]
                self.adam[k][1][...] = data[f"m2:{k}"]
            self.t = int(read_json_object(path / "session.json")["t"])
        except (KeyError, ValueError, TypeError) as exc:
            raise UserInputError(f"{path}: not this session's checkpoint ({exc})") from None

    def save_adapter(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / "fake_adapter.npz", **{k: v for k, v in self.params.items()})
        meta: dict[str, Any] = {"method": self.method, "lora_scale": self.model.lora_scale}
        (path / "fake_adapter.json").write_text(json.dumps(meta), encoding="utf-8")
