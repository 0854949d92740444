"""The model's context in tokens, and the sliding window that keeps it bounded (pure).

Context window compression (`setup.contextWindowCompression.slidingWindow`) works as Gemini
documents it: before a turn runs, if the context (system instruction plus history, in
estimated tokens) exceeds the trigger, the oldest turns are dropped until it is at most the
target; the kept part starts at a user turn, the system instruction always stays and the
turn being answered is never dropped. Usage metadata then counts the compressed context.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .client_messages import SlidingWindow, Turn
from .stats import Compression


def tokens_for_words(words: int) -> int:
    return math.ceil(words * 4 / 3)


def estimate_tokens(text: str) -> int:
    return tokens_for_words(len(text.split()))


def context_tokens(system: str, history: Sequence[Turn]) -> int:
    """Estimated tokens of what the model sees: the system instruction and the history."""
    return tokens_for_words(len(system.split()) + sum(len(t.text.split()) for t in history))


def slide_window(history: list[Turn], system: str, target_tokens: int) -> int:
    """Drop the oldest turns until the context is at most `target_tokens`; return how many.

    The kept part starts at a user turn and always includes the newest user turn, even if
    that alone is over the target (the turn being answered cannot be forgotten).
    """
    words = [len(t.text.split()) for t in history]
    remaining = len(system.split()) + sum(words)  # of the suffix starting at index i
    last_user = max((i for i, t in enumerate(history) if t.role == "user"), default=-1)
    if tokens_for_words(remaining) <= target_tokens:
        return 0
    for i in range(1, last_user + 1):
        remaining -= words[i - 1]
        fits = tokens_for_words(remaining) <= target_tokens
        if history[i].role == "user" and (fits or i == last_user):
            del history[:i]
            return i
    return 0


def compress(history: list[Turn], system: str, window: SlidingWindow) -> Compression | None:
    """Slide the window before a turn if the context is over the trigger; what it did."""
    before = context_tokens(system, history)
    if before <= window.trigger_tokens:
        return None
    dropped = slide_window(history, system, window.target_tokens)
    if not dropped:
        return None
    return Compression(before, context_tokens(system, history), dropped)
