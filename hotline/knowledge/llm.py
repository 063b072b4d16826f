"""The assistant's optional language model: off unless HOTLINE_LLM_URL names an OpenAI-style
chat-completions endpoint. The model is given the retrieved passages only, numbered, and told
to answer from them alone and cite them ([1], [2]); a reply that cites none of them (or one
it was not given), an empty one, an error or a timeout is not used, and the assistant
answers with the passage itself. Nothing is sent anywhere without the setting."""

import logging
import re
from dataclasses import dataclass

import httpx

from hotline.config import Settings

log = logging.getLogger("hotline.assistant")

# A model's answer longer than this is not taken (an answer from a few short passages is short).
MAX_ANSWER_CHARS = 1000
_CITATION = re.compile(r"\[(\d{1,2})\]")

INSTRUCTIONS = (
    "你是政务服务便民热线的智能客服。只能根据下面编号的资料回答市民的问题，"
    "不得使用资料以外的任何信息，不得编造政策、材料、时限或费用。"
    "回答要简短、用平实的中文，并在引用的句子后标注资料编号，如[1]、[2]。"
    "如果资料不能回答这个问题，只回答：资料中没有答案。"
)


@dataclass(frozen=True)
class Passage:
    """A retrieved passage: the article's title and the text taken from it."""

    title: str
    text: str


def configured(settings: Settings) -> bool:
    return bool(settings.llm_url)


def prompt(question: str, passages: list[Passage]) -> list[dict[str, str]]:
    """The chat messages: the instructions, then the numbered passages and the question."""
    sources = "\n\n".join(f"[{i}]《{p.title}》\n{p.text}" for i, p in enumerate(passages, 1))
    return [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": f"资料：\n{sources}\n\n市民的问题：{question}"},
    ]


def acceptable(reply: str | None, passages: int) -> str | None:
    """The reply, if it may be shown: not empty, not too long, citing at least one of the
    passages given and none other."""
    text = (reply or "").strip()
    if not text or len(text) > MAX_ANSWER_CHARS:
        return None
    cited = {int(n) for n in _CITATION.findall(text)}
    if not cited or not cited <= set(range(1, passages + 1)):
        return None
    return text


def answer(settings: Settings, question: str, passages: list[Passage]) -> str | None:
    """The model's answer from the passages, or None: not configured, no passages, an error,
    a timeout, or a reply that is not acceptable."""
    if not configured(settings) or not passages:
        return None
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"} if settings.llm_api_key else {}
    body = {"model": settings.llm_model, "messages": prompt(question, passages), "temperature": 0}
    try:
        response = httpx.post(settings.llm_url, json=body, headers=headers, timeout=settings.llm_timeout_seconds)
        response.raise_for_status()
        reply = response.json()["choices"][0]["message"]["content"]
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("the language model gave no answer (%s); answering with the passage", exc.__class__.__name__)
        return None
    text = acceptable(reply if isinstance(reply, str) else None, len(passages))
    if text is None:
        log.info("the language model's reply cited no given passage; answering with the passage")
    return text
