"""Text of the knowledge base: Chinese segmentation, callers' words for official terms,
highlighted snippets and the safe Markdown renderer."""

import html
import re
import threading
from functools import cache

from markdown_it import MarkdownIt

from hotline.words import stop_words, synonym_groups

SYNONYMS = "knowledge_synonyms.txt"
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
    them: 营业执照 gives 营业, 执照 and 营业执照), lowercased, punctuation left out."""
    with _lock:  # jieba initialises its dictionary lazily, once
        tokens = _tokenizer().cut_for_search(text.lower())
    return [t for t in (t.strip() for t in tokens) if t and not _NOT_WORD.match(t)]


def segmented(text: str) -> str:
    """A text as its words separated by spaces: what the search index stores."""
    return " ".join(words(text))


def query_terms(query: str) -> list[str]:
    """The words to look for: the query's own, then the official terms of the callers'
    words in it and the plain words for the official terms in it (hotline/data/knowledge_synonyms.txt);
    stop words left out, unless nothing else is left."""
    text = query.lower()
    own = list(dict.fromkeys(words(text)))
    terms = list(own)
    for group in synonym_groups(SYNONYMS):
        if any(_mentions(text, own, word) for word in group):
            terms += [w for w in group if w not in terms]
    return [t for t in terms if t not in stop_words()] or terms


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
