"""Template parsing and rendering: slots, escapes, soft tokens, demos, Chinese text."""

import pytest

from unified_prompt.errors import TemplateError
from unified_prompt.prompts.segments import Demos, Mask, Rendered, Soft, Text
from unified_prompt.prompts.template import Template, truncate_text


def test_fields_mask_and_merged_text():
    t = Template("Review: {text}\nSentiment: {mask}")
    r = t.render({"text": "A fine film."}, example_id="x1")
    assert r.segments == (Text("Review: A fine film.\nSentiment: "), Mask())
    assert r.example_id == "x1"
    assert t.fields == ("text",)
    assert r.before_mask() == (Text("Review: A fine film.\nSentiment:"),)
    assert r.mask_lead() == " "
    assert r.fill_mask("positive") == "Review: A fine film.\nSentiment: positive"


def test_escaped_braces_are_literal():
    r = Template("{{json}}: {text} {{ {mask} }}").render({"text": "t"})
    assert r.segments == (Text("{json}: t { "), Mask(), Text(" }"))


@pytest.mark.parametrize("source,expected", [
    ("{soft}", Soft(0, 1, None)),
    ("{soft:20}", Soft(0, 20, None)),
    ('{soft:"Classify the review"}', Soft(0, None, "Classify the review")),
    ('{soft:5:"say \\"yes\\" or no"}', Soft(0, 5, 'say "yes" or no')),
])
def test_soft_slot_forms(source, expected):
    r = Template(source + " {text} {mask}").render({"text": "x"})
    assert r.segments[0] == expected


def test_soft_slots_are_numbered_in_order_and_can_sit_mid_template():
    t = Template("{soft:2} {text} {soft:3} It was {mask}.")
    assert [s.slot for s in t.soft_slots] == [0, 1]
    r = t.render({"text": "good"})
    kinds = [type(s).__name__ for s in r.segments]
    assert kinds == ["Soft", "Text", "Soft", "Text", "Mask", "Text"]


def test_with_soft_prefix_puts_prompt_tuning_tokens_first():
    t = Template("Review: {text} {mask}").with_soft_prefix(20, 'the "init"')
    assert t.soft_slots == (Soft(0, 20, 'the "init"'),)
    assert t.render({"text": "x"}).segments[0] == Soft(0, 20, 'the "init"')


def test_chinese_template_and_fields():
    t = Template("评论：{text}\n情感：{mask}")
    r = t.render({"text": "这部电影非常好看"})
    assert r.prefix_text() == "评论：这部电影非常好看\n情感："
    assert r.mask_lead() == ""
    assert r.fill_mask("正面").endswith("情感：正面")


def test_demos_go_to_their_slot_or_first_after_soft():
    demo = Template("Q: {text} A: {mask}").render_demo({"text": "2+2"}, "4")
    assert demo.prompt.fill_mask(demo.answer) == "Q: 2+2 A: 4"
    with_slot = Template("Intro\n{demos}Q: {text} A: {mask}").render(
        {"text": "3+3"}, demos=(demo,), separator="\n")
    assert isinstance(with_slot.segments[1], Demos)
    assert with_slot.text() == "Intro\nQ: 2+2 A: 4\nQ: 3+3 A: "
    no_slot = Template("{soft:2}Q: {text} A: {mask}").render({"text": "3+3"}, demos=(demo,))
    assert isinstance(no_slot.segments[0], Soft) and isinstance(no_slot.segments[1], Demos)
    flat = no_slot.expand_demos()
    assert not any(isinstance(s, Demos) for s in flat.segments)


def test_demos_never_carry_soft_tokens():
    demo = Template("{soft:4} {text} = {mask}").render_demo({"text": "a"}, "b")
    assert not demo.prompt.soft_slots


@pytest.mark.parametrize("bad,message", [
    ("{text", "unclosed"), ("text}", "unmatched"), ("{1abc}", "cannot read slot"),
    ("{mask} {mask}", "at most one"), ("{soft:0}", "at least 1"), ("{soft:x}", "bad soft slot"),
    ("{demos}{demos}", "more than one"),
])
def test_parse_errors_are_clear(bad, message):
    with pytest.raises(TemplateError, match=message):
        Template(bad)


def test_missing_field_names_the_field_and_the_remedy():
    with pytest.raises(TemplateError, match=r"no field 'question'.*data.fields"):
        Template("{question} {mask}").render({"text": "x"})


def test_truncate_cuts_at_a_word_boundary():
    assert truncate_text("one two three four", 100) == "one two three four"
    assert truncate_text("alpha beta gamma delta", 13) == "alpha beta"
    r = Template("{text} {mask}").render({"text": "alpha beta gamma"}, truncate={"text": 10})
    assert r.segments[0] == Text("alpha beta ")


def test_rendered_of_drops_empty_text():
    assert Rendered.of([Text(""), Text("a"), Text("b"), Mask()]).segments == (Text("ab"), Mask())
