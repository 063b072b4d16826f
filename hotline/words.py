"""Word lists shipped in hotline/data: groups of words taken for one another, stop words."""

from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"


@cache
def synonym_groups(name: str) -> tuple[tuple[str, ...], ...]:
    """The groups of a synonym file in hotline/data: one group a line, words separated by
    spaces, `#` starts a comment; words lowercased."""
    groups = []
    for line in (DATA_DIR / name).read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) > 1:
            groups.append(tuple(w.lower() for w in words))
    return tuple(groups)


@cache
def stop_words(name: str = "stopwords.txt") -> frozenset[str]:
    """Words too common to say anything, one a line in a file of hotline/data (`#` starts
    a comment): stopwords.txt for the hot words, knowledge_stopwords.txt for the knowledge
    base's questions."""
    lines = (DATA_DIR / name).read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in (line.split("#", 1)[0].strip() for line in lines) if w)
