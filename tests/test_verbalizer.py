"""Verbalizers: multi-word and Chinese label words, the label-score arithmetic, parsing,
and calibration."""

import numpy as np
import pytest

from unified_prompt.errors import ConfigError
from unified_prompt.prompts.calibration import calibrate, label_prior
from unified_prompt.prompts.verbalizer import Verbalizer, WordScores, log_softmax


def test_words_labels_and_index():
    v = Verbalizer({"positive": ["great", "absolutely wonderful"], "negative": "terrible",
                    "neutral": ["一般", "还行"]})
    assert v.labels == ("positive", "negative", "neutral")
    assert v.flat_words == ("great", "absolutely wonderful", "terrible", "一般", "还行")
    assert v.word_label == (0, 0, 1, 2, 2)
    assert v.answer("neutral") == "一般"
    assert v.to_dict()["negative"] == ["terrible"]


def test_label_scores_logsumexp_over_words_and_mean_reduction():
    v = Verbalizer({"a": ["x", "y z"], "b": ["w"]})
    lp = np.array([[np.log(0.2), np.log(0.1), np.log(0.3)]])
    n = np.array([[1, 2, 1]])
    summed = v.label_scores(WordScores(lp, n), "sum")
    np.testing.assert_allclose(summed, [[np.log(0.3), np.log(0.3)]])
    mean = v.label_scores(WordScores(lp, n), "mean")
    np.testing.assert_allclose(mean[0, 0], np.log(0.2 + np.exp(np.log(0.1) / 2)))


def test_label_scores_survive_minus_infinity():
    v = Verbalizer({"a": ["x"], "b": ["y"]})
    out = v.label_scores(WordScores(np.array([[-np.inf, -1.0]]), np.ones((1, 2))))
    assert out[0, 0] == -np.inf and out[0, 1] == -1.0


@pytest.mark.parametrize("bad,match", [
    ({}, "at least two"), ({"a": [], "b": "x"}, "non-empty"), ({"a": "x", "b": "x"}, "both"),
    ({"a": " ", "b": "y"}, "non-empty")])
def test_bad_verbalizers_are_config_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        Verbalizer(bad)


def test_unknown_label_names_the_labels():
    with pytest.raises(ConfigError, match="labels: a, b"):
        Verbalizer({"a": "x", "b": "y"}).label_index("c")


@pytest.mark.parametrize("text,label", [
    ("Positive.", "positive"), ("  negative!", "negative"), ("I'd say positive", "positive"),
    ("very positive", "very positive"), ("好评", "好"), ("no idea", None)])
def test_parse_generated_answers(text, label):
    v = Verbalizer({"positive": "positive", "negative": "negative",
                    "very positive": "very positive", "好": "好评"})
    assert v.parse(text) == label


def test_contextual_calibration_removes_a_constant_label_bias():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 200)
    clean = np.where(truth[:, None] == np.arange(2), 0.0, -1.0)
    biased = clean + np.array([0.0, 3.0])  # the model loves label 1
    assert (biased.argmax(1) == truth).mean() < 0.6
    prior = label_prior(np.array([[0.0, 3.0]]))  # content-free input shows the bias
    fixed = calibrate(biased, prior)
    assert (fixed.argmax(1) == truth).mean() == 1.0
    np.testing.assert_allclose(np.exp(fixed).sum(1), 1.0)


def test_log_softmax_normalises():
    x = log_softmax(np.array([[1.0, 2.0, 3.0]]))
    assert np.exp(x).sum() == pytest.approx(1.0)
