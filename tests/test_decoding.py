"""The framework-neutral text layout both local backends use for raw text and generation
(unified_prompt.decoding): checked here on plain Python inputs, without a model."""

from __future__ import annotations

import pytest

from unified_prompt.decoding import (
    anchored,
    continuation,
    finish,
    mask_after,
    raw_prompt,
    token_pieces,
)
from unified_prompt.encoding import Encoded, SpecialIds
from unified_prompt.errors import UserInputError
from unified_prompt.prompts.template import Template

#: A toy byte-level vocabulary: id -> bytes; id 9 is half of "é" and id 10 the other half.
VOCAB = {1: b"Hi", 2: b" there", 3: b"!", 4: b"\n", 5: b" you", 9: "é".encode()[:1],
         10: "é".encode()[1:]}


def decode(ids: list[int]) -> str:
    return b"".join(VOCAB[i] for i in ids).decode("utf-8", errors="replace")


def test_token_pieces_join_to_the_text_and_keep_leading_spaces():
    text = "Hi there!"
    pieces = token_pieces(text, [2, 8, 9])
    assert pieces == [("Hi", 0), (" there", 2), ("!", 8)]
    assert "".join(p for p, _ in pieces) == text
    # offsets trimmed by a tokenizer (" there" reported as ending early) still join
    assert "".join(p for p, _ in token_pieces(text, [2, 3, 9])) == text
    # a token ending inside an already written character owns ""
    assert token_pieces("é!", [1, 1, 2]) == [("é", 0), ("", 1), ("!", 1)]


def test_finish_cuts_at_the_earliest_stop_and_drops_the_mask_lead():
    prompt = Template("Q: {text}\nA: {mask}").render({"text": "x"})
    assert prompt.mask_lead() == " "
    assert finish(" yes\nmore. end", prompt, (".", "\n")) == "yes"
    assert finish(" yes", prompt, ()) == "yes"


def test_raw_prompt_lays_out_bos_soft_and_cuts_from_the_front():
    special = SpecialIds(bos=7, eos=8, add_bos=True)
    raw = raw_prompt([1, 2, 3], special, {0: 2}, budget=5, placeholder=0, backend="t")
    assert raw.encoded.ids == (7, 0, 0, 2, 3) and raw.encoded.soft == ((0, 1), (0, 2))
    assert (raw.head, raw.dropped) == (3, 1)
    first, targets = raw.targets()
    assert (first, targets) == (2, [2, 3])  # position 2 (last soft) predicts id 2
    plain = raw_prompt([7, 1, 2], special, {}, budget=10, backend="t")
    assert plain.encoded.ids == (7, 1, 2), "a text that spells BOS does not get a second"
    assert plain.targets() == (0, [1, 2])  # no head: the first token (7) is not scored
    with pytest.raises(UserInputError, match="leave no room"):
        raw_prompt([1], special, {0: 4}, budget=5, backend="t")


def test_mask_after_writes_then_asks_for_one_more():
    enc = Encoded((5, 99, 99, 6), ((0, 3),), (1, 2))
    step = mask_after(enc, [11], mask_id=99)
    assert step.ids == (5, 11, 99, 6) and step.masks == (2,) and step.soft == ((0, 3),)


def test_continuation_cuts_text_and_tokens_at_a_stop():
    ids, lps = [2, 5, 4, 1], [-0.1, -0.2, -0.3, -0.4]
    top = [[(i, lp)] for i, lp in zip(ids, lps, strict=True)]
    write = anchored(decode, [1])
    gen = continuation("Hi", ids, lps, top, write, ("\n",), False, 1, lambda i: decode([i]))
    assert gen.text == " there you" and gen.finish_reason == "stop"
    assert [t.token for t in gen.tokens] == [" there", " you"]
    assert [t.offset for t in gen.tokens] == [2, 8]
    assert gen.tokens[0].top == ((" there", -0.1),)
    free = continuation("Hi", ids[:2], lps[:2], top[:2], write, (), False, 1, str)
    assert free.finish_reason == "length" and free.text == " there you"


def test_continuation_gives_a_split_character_to_the_token_completing_it():
    gen = continuation("", [9, 10, 3], [-1.0, -1.0, -1.0], [[], [], []], decode, (), True, 0,
                       str)
    assert [t.token for t in gen.tokens] == ["", "é", "!"]
    assert gen.text == "é!" and gen.finish_reason == "stop"
