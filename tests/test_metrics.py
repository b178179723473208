"""Generation metrics: the tokenizer follows the language, so Chinese scores are real, and
English scores are the libraries' standard ones, unchanged."""

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from unified_prompt.errors import ConfigError
from unified_prompt.metrics import (
    bleu,
    generation_metrics,
    resolve_tokenize,
    rouge_1,
    rouge_2,
    rouge_l,
)

ZH_REF, ZH_HYP = "今天天气很好我们去公园散步", "今天天气很好我们去公园跑步"
EN_REFS = ["The cats were sitting on the mat.", "Stocks fell sharply on Monday"]
EN_HYPS = ["the cat sat on the mat", "Shares fell on Monday morning"]


def test_chinese_is_scored_per_character():
    assert bleu([ZH_REF], [ZH_HYP]) == pytest.approx(84.2363, abs=1e-3)  # sacrebleu zh
    # 13 characters, 12 shared in order: LCS F1 = 12/13; bigrams: 10 of 12 shared
    assert rouge_l([ZH_REF], [ZH_HYP]) == pytest.approx(12 / 13)
    assert rouge_1([ZH_REF], [ZH_HYP]) == pytest.approx(12 / 13)
    assert rouge_2([ZH_REF], [ZH_HYP]) == pytest.approx(10 / 12)
    assert rouge_l([ZH_REF], [ZH_REF]) == 1.0 and bleu([ZH_REF], [ZH_REF]) == pytest.approx(100)
    forced = generation_metrics([ZH_REF], [ZH_HYP], ["bleu", "rouge_l"], tokenize="13a")
    assert forced == {"bleu": 0.0, "rouge_l": 0.0}, "13a sees one word per sentence"


def test_english_numbers_are_the_libraries_defaults():
    scorer = rouge_scorer.RougeScorer(["rougeL", "rouge1", "rouge2"], use_stemmer=True)
    expected = {k: sum(scorer.score(r, h)[k].fmeasure for r, h in zip(EN_REFS, EN_HYPS, strict=True))
                   / 2
                for k in ("rougeL", "rouge1", "rouge2")}
    assert rouge_l(EN_REFS, EN_HYPS) == pytest.approx(expected["rougeL"])
    assert rouge_1(EN_REFS, EN_HYPS) == pytest.approx(expected["rouge1"])
    assert rouge_2(EN_REFS, EN_HYPS) == pytest.approx(expected["rouge2"])
    assert bleu(EN_REFS, EN_HYPS) == pytest.approx(
        sacrebleu.corpus_bleu(EN_HYPS, [EN_REFS]).score)
    assert 0 < rouge_2(EN_REFS, EN_HYPS) < rouge_1(EN_REFS, EN_HYPS) < 1


def test_tokenizer_choice():
    assert resolve_tokenize("auto", ["hello world"]) == "13a"
    assert resolve_tokenize("auto", ["hello", "你好"]) == "zh"
    assert resolve_tokenize("auto", ["今日はいい天気"]) == "char"
    assert resolve_tokenize("intl", ["你好"]) == "intl"
    with pytest.raises(ConfigError, match=r"eval\.tokenize"):
        resolve_tokenize("klingon", ["x"])
