"""The shared encoding layout: BOS, soft positions, masks, continuations, truncation."""

import pytest

from unified_prompt.encoding import (
    SpecialIds,
    check_triggers,
    encode_causal,
    encode_continuation,
    encode_masked,
    soft_counts,
)
from unified_prompt.errors import UserInputError
from unified_prompt.prompts.template import Template

VOCAB: dict[str, int] = {}


def encode(text: str) -> list[int]:
    """Whitespace 'tokenizer' that keeps the leading space on a word, like BPE."""
    out, word = [], ""
    for ch in text:
        if ch == " " and word.strip():
            out.append(VOCAB.setdefault(word, 100 + len(VOCAB)))
            word = ""
        word += ch
    if word:
        out.append(VOCAB.setdefault(word, 100 + len(VOCAB)))
    return out


CAUSAL = SpecialIds(bos=1, eos=2, pad=0, add_bos=True)
MASKED = SpecialIds(cls=101, sep=102, pad=0, mask=103)


def test_causal_prompt_stops_before_the_mask_and_the_word_takes_the_space():
    r = Template("Review: {text} Sentiment: {mask}").render({"text": "fine"})
    enc = encode_causal(r, encode, CAUSAL, max_length=64)
    assert enc.ids[0] == 1
    assert enc.ids[1:] == tuple(encode("Review: fine Sentiment:"))
    assert encode_continuation(r, "positive", encode) == encode(" positive")
    assert enc.masks == ()


def test_soft_positions_and_placeholders():
    r = Template('{soft:3} {text} {soft:"two words"} {mask}').render({"text": "x"})
    assert soft_counts(r, encode) == {0: 3, 1: 2}
    enc = encode_causal(r, encode, CAUSAL, max_length=64, placeholder=0)
    second = 1 + 3 + len(encode(" x "))
    assert enc.soft == ((0, 1), (0, 2), (0, 3), (1, second), (1, second + 1))
    assert all(enc.ids[p] == 0 for _, p in enc.soft)


def test_masked_layout_with_several_masks():
    r = Template("{text} It was {mask}.").render({"text": "fine"})
    enc = encode_masked(r, encode, MASKED, max_length=64, n_masks=3)
    assert enc.ids[0] == 101 and enc.ids[-1] == 102
    assert len(enc.masks) == 3 and all(enc.ids[p] == 103 for p in enc.masks)
    assert enc.masks == tuple(range(enc.masks[0], enc.masks[0] + 3))


def test_masked_layout_needs_a_mask_token():
    r = Template("{text} {mask}").render({"text": "x"})
    with pytest.raises(UserInputError, match="no mask token"):
        encode_masked(r, encode, SpecialIds(), max_length=16)


def test_truncation_cuts_the_front_of_the_longest_text_and_keeps_the_end():
    long = " ".join(f"w{i}" for i in range(50))
    r = Template("{soft:2} {text} Answer: {mask}").render({"text": long})
    enc = encode_causal(r, encode, CAUSAL, max_length=20, reserve=3)
    assert len(enc) == 17
    assert enc.ids[-2:] == tuple(encode(" Answer:"))[-2:] or enc.ids[-1] == encode(" Answer:")[-1]
    assert enc.soft == ((0, 1), (0, 2))


def test_truncation_impossible_is_a_clear_error():
    r = Template("{soft:30} {mask}").render({})
    with pytest.raises(UserInputError, match="without any text to cut"):
        encode_causal(r, encode, CAUSAL, max_length=10)


def test_trigger_ids_must_fill_each_soft_slot_exactly():
    from types import SimpleNamespace

    r = Template("{soft:2} {text} {mask}").render({"text": "x"})
    items = [SimpleNamespace(prompt=r)]
    check_triggers(items, {0: [5, 6]}, 10, encode)  # fits: nothing raised
    with pytest.raises(UserInputError, match="soft slot 0 holds 2 tokens but 1"):
        check_triggers(items, {0: [5]}, 10, encode)
    with pytest.raises(UserInputError, match=r"soft slots \[1\], which the prompt"):
        check_triggers(items, {0: [5, 6], 1: [7]}, 10, encode)
    with pytest.raises(UserInputError, match="vocabulary ids"):
        check_triggers(items, {0: [5, 10]}, 10, encode)
    with pytest.raises(UserInputError, match="at least one example"):
        check_triggers([], {0: [5, 6]}, 10, encode)
