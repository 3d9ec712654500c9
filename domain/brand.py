"""Brand checks a campaign must pass before it goes to review."""

from __future__ import annotations

import re
from collections.abc import Iterable

from domain.campaigns import Creative


def words_used(creatives: Iterable[Creative], words_to_avoid: Iterable[str]) -> list[str]:
    """The words to avoid that appear (whole word, any case) in the creatives' markup or DCO
    variants; an empty list passes."""
    texts = [text for creative in creatives for text in (creative.adm, *creative.variants)]
    found = []
    for word in words_to_avoid:
        pattern = re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        if any(pattern.search(text) for text in texts):
            found.append(word)
    return found
