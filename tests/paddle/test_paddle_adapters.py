"""Adapter layouts, the paddle-native files, paddlenlp's own loaders, and conversion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from unified_prompt_paddle.convert import convert_adapter
from unified_prompt_paddle.layouts import Entry, prefix_perm

from unified_prompt.adapters import write_manifest
from unified_prompt.errors import UserInputError
from unified_prompt.testing.conformance import BackendConformance, synthetic_examples
from unified_prompt.testing.tiny import tiny_model


class Helper(BackendConformance):
    backend_name = "paddle"

    @classmethod
    def model_ref(cls) -> str:
        return str(tiny_model("llama"))


def trained(backend, model, method: str, steps: int = 2, **settings):
    helper = Helper()
    builder = helper.builder(backend, model, method, **settings)
    session = backend.start_training(model, helper.setup_for(builder))
    items = builder.train_items(synthetic_examples())
    for _ in range(steps):
        session.forward_backward(items[:6])
        session.optimizer_step(0.02, 1.0)
    session.train_mode(False)
    return session, builder


def test_prefix_permutation_matches_both_layouts() -> None:
    hf = {"num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
          "hidden_size": 16}
    perm = prefix_perm(hf)
    layers, kv_dim = 3, 2 * 4
    # a value tagged with (layer, kv, column) in paddlenlp's order (kv, layer, column)
    native = np.array([[kv * 100 + layer * 10 + c for kv in range(2) for layer in range(layers)
                        for c in range(kv_dim)]], dtype=np.float32)
    canon = Entry("prefix.embedding", "0.weight", perm=perm, perm_axis=1).to_canonical(native)
    expected = [kv * 100 + layer * 10 + c for layer in range(layers) for kv in range(2)
                for c in range(kv_dim)]
    assert canon[0].tolist() == expected
    entry = Entry("x", "y", transpose=True, perm=perm[:4] % 4, perm_axis=0)
    value = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    np.testing.assert_array_equal(entry.to_canonical(entry.to_native(value)), value)


@pytest.mark.parametrize("settings", [{}, {"encoder": "lstm"}], ids=["mlp", "lstm"])
def test_numpy_encoders_match_paddle(paddle_backend, tiny_llama, settings) -> None:
    from unified_prompt_paddle.numpy_encoders import soft_outputs

    session, _ = trained(paddle_backend, tiny_llama, "p_tuning", **settings)
    ours = soft_outputs(session.trainable_state())[0]
    np.testing.assert_allclose(ours, session.model.soft.vectors(0).numpy(), atol=1e-5)


def test_prefix_numpy_cache_matches_paddlenlp(paddle_backend, tiny_llama) -> None:
    from unified_prompt_paddle.numpy_encoders import prefix_flat

    session, _ = trained(paddle_backend, tiny_llama, "prefix_tuning", projection=True,
                         projection_hidden=8)
    flat = prefix_flat(session.trainable_state())
    keys, values = session.model.prefix._get_past_key_values(1)[0]  # layer 0: (1, n, kv, hd)
    kv_dim = keys.shape[2] * keys.shape[3]
    np.testing.assert_allclose(flat[:, :kv_dim], keys.numpy()[0].reshape(-1, kv_dim), atol=1e-5)
    np.testing.assert_allclose(flat[:, kv_dim:2 * kv_dim], values.numpy()[0].reshape(-1, kv_dim),
                               atol=1e-5)


def test_lora_adapter_loads_with_paddlenlp(paddle_backend, tiny_llama, tmp_path: Path) -> None:
    """Our LoRA folder is paddlenlp's: LoRAModel.from_pretrained reproduces the logits."""
    from paddlenlp.peft import LoRAModel
    from unified_prompt_paddle.forward import head, run
    from unified_prompt_paddle.loading import clone_net
    from unified_prompt_paddle.runtime import paddle

    session, _ = trained(paddle_backend, tiny_llama, "lora")
    session.save_adapter(tmp_path / "lora")
    assert {"lora_config.json", "lora_model_state.pdparams"} <= {
        p.name for p in (tmp_path / "lora").iterdir()}
    plain = LoRAModel.from_pretrained(clone_net(tiny_llama), str(tmp_path / "lora"))
    plain.eval()
    ids = np.array([[504, 3300, 314, 4155, 28]], dtype=np.int64)
    mask = np.ones_like(ids)
    pos = np.arange(5)[None]
    with paddle().no_grad():
        ours = head(session.model, run(session.model, ids, mask, pos)[0]).numpy()
        theirs = plain(input_ids=paddle().to_tensor(ids), return_dict=True).logits.numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_prefix_adapter_loads_with_paddlenlp(paddle_backend, tiny_llama, tmp_path: Path) -> None:
    from paddlenlp.peft import PrefixModelForCausalLM
    from paddlenlp.peft.prefix import llama_postprocess_past_key_value

    session, _ = trained(paddle_backend, tiny_llama, "prefix_tuning")
    session.save_adapter(tmp_path / "prefix")
    plain = PrefixModelForCausalLM.from_pretrained(
        tiny_llama.net, str(tmp_path / "prefix"), llama_postprocess_past_key_value)
    ours = session.model.prefix.prefix_encoder.state_dict()
    for name, value in plain.prefix_encoder.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), ours[name].numpy())


@pytest.mark.parametrize("method", ["prompt_tuning", "p_tuning", "prefix_tuning", "lora",
                                    "full"])
def test_convert_round_trip_keeps_predictions(paddle_backend, tiny_llama, tmp_path: Path,
                                              method: str) -> None:
    """paddle -> hf -> paddle through the CLI command gives the same scores, exactly."""
    from click.testing import CliRunner
    from unified_prompt_paddle.cli import convert

    session, builder = trained(paddle_backend, tiny_llama, method)
    prompts = builder.render(synthetic_examples()[:4])
    words = builder.verbalizer.flat_words
    before = paddle_backend.score(session.model, prompts, words).logprob
    session.save_adapter(tmp_path / "a")
    write_manifest(tmp_path / "a", backend="paddle", method=method,
                   base_model={"name": Helper.model_ref()})
    runner = CliRunner()
    res = runner.invoke(convert, [str(tmp_path / "a"), str(tmp_path / "b"), "--to", "hf"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "b" / "hf_adapter.json").exists()
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["backend"] == "hf" and manifest["converted_from"]["backend"] == "paddle"
    res = runner.invoke(convert, [str(tmp_path / "b"), str(tmp_path / "c"), "--to", "paddle"])
    assert res.exit_code == 0, res.output
    after = paddle_backend.score(paddle_backend.load_adapter(tiny_llama, tmp_path / "c"),
                                 prompts, words).logprob
    np.testing.assert_allclose(after, before, atol=1e-5)
    direct = paddle_backend.score(paddle_backend.load_adapter(tiny_llama, tmp_path / "b"),
                                  prompts, words).logprob
    np.testing.assert_allclose(direct, before, atol=1e-5)


def test_convert_needs_a_base_model(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "soft_prompt.safetensors").write_bytes(b"")
    with pytest.raises(UserInputError, match="base model"):
        convert_adapter(tmp_path / "a", tmp_path / "b", to="paddle")


def test_convert_refuses_to_overwrite(paddle_backend, tiny_llama, tmp_path: Path) -> None:
    session, _ = trained(paddle_backend, tiny_llama, "prompt_tuning", steps=1)
    session.save_adapter(tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep").write_text("x")
    with pytest.raises(UserInputError, match="not empty"):
        convert_adapter(tmp_path / "a", tmp_path / "b", to="hf", model=Helper.model_ref())
