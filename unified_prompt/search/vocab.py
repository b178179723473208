"""Word lists for discrete prompt search, from the data and a small general list."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from unified_prompt.data.example import Example

_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)

#: Words a prompt for many tasks might use; the data adds its own domain's words.
GENERAL = ("review", "text", "sentence", "opinion", "overall", "verdict", "rating", "summary",
           "tone", "feeling", "answer", "label", "really", "very", "truly", "absolutely",
           "totally", "quite", "definitely", "honestly", "simply", "just", "thus", "so",
           "therefore", "because", "this", "that", "was", "is", "it", "all", "great", "good",
           "bad", "terrible", "amazing", "awful", "excellent", "poor", "fine", "best", "worst",
           "love", "hate", "enjoy", "boring", "fun")

_STOP = (
    "the and for are but not you all any can had her was one our out has have him his how its "
    "may new now old see two way who did get let say she too use with that this from they will "
    "would there their what about which when make like than them then these some into could "
    "been more other were your only over such most also much very just even being does while "
    "where after before through between both each those under again")
STOPWORDS = frozenset(_STOP.split())


def data_words(examples: Sequence[Example], n: int, limit: int = 3000) -> list[str]:
    """The `n` most frequent content words of the examples (by how many examples use them)."""
    counts: Counter[str] = Counter()
    for ex in examples[:limit]:
        counts.update({w.lower() for w in _WORD.findall(ex.text)} - STOPWORDS)
    return [w for w, _ in sorted(counts.items(), key=lambda t: (-t[1], t[0]))[:n]]


def prompt_vocabulary(examples: Sequence[Example], n_data: int,
                      given: Sequence[str] | None = None) -> list[str]:
    if given:
        return list(dict.fromkeys(given))
    return list(dict.fromkeys([*GENERAL, *data_words(examples, n_data)]))
