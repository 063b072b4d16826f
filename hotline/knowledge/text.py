"""Text of the knowledge base: Chinese segmentation, callers' words for official terms,
highlighted snippets and the safe Markdown renderer."""

import html
import math
import re
import threading
from dataclasses import dataclass, field
from functools import cache, lru_cache

from markdown_it import MarkdownIt

from hotline.words import stop_words, synonym_groups

SYNONYMS = "knowledge_synonyms.txt"
STOPWORDS = "knowledge_stopwords.txt"
# Characters that are no word: punctuation, symbols, spaces.
_NOT_WORD = re.compile(r"^[\W_]+$")
# Markdown's marks, left out of snippets (they show the text, not its markup).
_MARKUP = re.compile(r"[#*_`|~\[\]]+|^\s*>+|\(https?://[^)]*\)|!\[|^\s*[-+]\s+", re.MULTILINE)
SNIPPET_CHARS = 120
_lock = threading.Lock()


@cache
def _tokenizer():
    """A segmenter of the knowledge base's own (jieba's dictionary, plus every word of the
    synonym list so that a caller's word and the official term segment whole), apart from
    the one the hot words use."""
    import jieba

    tokenizer = jieba.Tokenizer()
    for group in synonym_groups(SYNONYMS):
        for word in group:
            if len(word) > 1:
                tokenizer.add_word(word, freq=max(tokenizer.suggest_freq(word), 1000))
    return tokenizer


def words(text: str) -> list[str]:
    """The words of a text in jieba's search mode (long words and the shorter words inside
    them: 营业执照 gives 营业, 执照 and 营业执照), lowercased, punctuation left out; words
    the dictionary does not know are cut into the ones it knows and single characters (no
    guess by jieba's HMM: slower, and it makes words of phrases like 我要)."""
    out: list[str] = []
    for block in _BLOCK.split(text.lower()):
        if block and not _NOT_WORD.match(block):
            out += _block_words(block)
    return out


# jieba cuts a text block by block (runs of letters and digits between punctuation and
# spaces), each on its own: the words of a block are kept, since guides repeat theirs
# (收费标准：不收费, the same steps and the same telephone numbers).
_BLOCK = re.compile(r"([^\u4E00-\u9FD5a-zA-Z0-9+#&._%\-]+)")


@lru_cache(maxsize=65536)
def _block_words(block: str) -> tuple[str, ...]:
    with _lock:  # jieba initialises its dictionary lazily, once
        tokens = list(_tokenizer().cut_for_search(block, HMM=False))
    return tuple(t for t in (t.strip() for t in tokens) if t and not _NOT_WORD.match(t))


def segmented(text: str) -> str:
    """A text as its words separated by spaces: what the search index stores."""
    return " ".join(words(text))


# How much a word of the question tells, from its frequency in jieba's dictionary (general
# Chinese): log(total / frequency) less this floor, so that 能, 吗, 怎么 count little and
# 社保卡, 营业执照 much. A word the dictionary lacks counts as an ordinary content word.
_INFORMATIVENESS_FLOOR = 5.0
_UNKNOWN_WORD_INFORMATIVENESS = 7.0
_MIN_INFORMATIVENESS = 0.5
# The weight of a term found for a word of the question, against the word itself (1.0): a
# shorter word inside it (营业 in 营业执照), the official term of a caller's word (注销 for
# 关掉), two characters of a word the dictionary does not know (保温箱: 保温, 温箱).
PART_WEIGHT = 0.6
SYNONYM_WEIGHT = 0.8
BIGRAM_WEIGHT = 0.4


@dataclass
class Concept:
    """One thing the question says: a word of it, with the terms that express it in an
    article (the word, its parts, its official or plain synonyms), each with a weight."""

    word: str
    weight: float
    terms: dict[str, float] = field(default_factory=dict)

    def add(self, term: str, weight: float) -> None:
        if weight > self.terms.get(term, 0.0):
            self.terms[term] = weight


def informativeness(word: str) -> float:
    """How much a word says (see _INFORMATIVENESS_FLOOR)."""
    tokenizer = _tokenizer()
    with _lock:
        tokenizer.check_initialized()
    freq = tokenizer.FREQ.get(word, 0)
    if not freq:
        return _UNKNOWN_WORD_INFORMATIVENESS
    return max(_MIN_INFORMATIVENESS, math.log(tokenizer.total / freq) - _INFORMATIVENESS_FLOOR)


def _known(word: str) -> bool:
    return bool(_tokenizer().FREQ.get(word, 0))


def query_concepts(query: str) -> list[Concept]:
    """The question as concepts: each word of it (jieba's accurate mode), stop words left
    out unless nothing else is left, with its parts (search mode), the two-character pieces
    of a word the dictionary does not know, and the words of the synonym list taken for it
    (hotline/data/knowledge_synonyms.txt)."""
    text = query.lower()
    with _lock:
        cut = [t.strip() for t in _tokenizer().cut(text, HMM=False)]
    own = list(dict.fromkeys(t for t in cut if t and not _NOT_WORD.match(t)))
    kept = [w for w in own if w not in stop_words(STOPWORDS)] or own
    concepts = []
    for w in kept:
        concept = Concept(w, informativeness(w))
        concept.add(w, 1.0)
        for part in words(w):
            if part != w and len(part) > 1:
                concept.add(part, PART_WEIGHT)
        if len(w) > 2 and not _known(w):
            for i in range(len(w) - 1):
                concept.add(w[i : i + 2], BIGRAM_WEIGHT)
        concepts.append(concept)
    tokens = words(text)
    for group in synonym_groups(SYNONYMS):
        mentioned = [m for m in group if _mentions(text, tokens, m)]
        if not mentioned:
            continue
        for m in mentioned:
            holders = [c for c in concepts if m == c.word or (len(m) > 1 and (m in c.word or c.word in m))]
            if not holders and m not in stop_words(STOPWORDS):
                holders = [Concept(m, informativeness(m))]
                holders[0].add(m, 1.0)
                concepts.append(holders[0])
            for c in holders:
                share = 1.0 if m == c.word else PART_WEIGHT
                for other in group:
                    c.add(other, SYNONYM_WEIGHT * share)
    return concepts


def query_terms(query: str) -> list[str]:
    """The words to look for: the query's own, then the official terms of the callers'
    words in it and the plain words for the official terms in it (hotline/data/knowledge_synonyms.txt);
    stop words left out, unless nothing else is left."""
    return list(dict.fromkeys(t for c in query_concepts(query) for t in c.terms))


def _mentions(text: str, tokens: list[str], word: str) -> bool:
    # A one-character word (证, 办, 咋) counts where it is a word of its own or begins one
    # (咋办); inside another word (身份证 is no 证 of a licence) it does not.
    if len(word) > 1:
        return word in text
    return any(t == word or (len(t) == 2 and t[0] == word) for t in tokens)


def plain(markdown: str) -> str:
    """A Markdown text without its marks, on one line."""
    return " ".join(_MARKUP.sub(" ", markdown).split())


def snippet(text: str, terms: list[str], size: int = SNIPPET_CHARS) -> str:
    """A passage of `text` around its first term, as HTML: the terms wrapped in <mark>,
    everything else escaped."""
    found = [t for t in sorted(set(terms), key=len, reverse=True) if t in text.lower()]
    lowered = text.lower()
    first = min((lowered.index(t) for t in found), default=0)
    start = max(0, first - size // 4)
    end = min(len(text), start + size)
    start = max(0, min(start, end - size))
    passage = text[start:end]
    out = "…" if start else ""
    if found:
        pattern = re.compile("|".join(re.escape(t) for t in found), re.IGNORECASE)
        pos = 0
        for m in pattern.finditer(passage):
            out += html.escape(passage[pos : m.start()]) + "<mark>" + html.escape(m.group()) + "</mark>"
            pos = m.end()
        out += html.escape(passage[pos:])
    else:
        out += html.escape(passage)
    return out + ("…" if end < len(text) else "")


@cache
def _markdown() -> MarkdownIt:
    # CommonMark with raw HTML off: a <script> in a body reaches the page as text, and
    # links with javascript: and the like are not made links (markdown-it's validateLink).
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render(markdown: str) -> str:
    """An article's Markdown body as safe HTML."""
    return _markdown().render(markdown)
