"""What a rule's templates are filled with on one connection (see `rules`)."""

from __future__ import annotations

from adkvoice.live_models import DEFAULT_VOICE

from .client_messages import Setup
from .handles import ContextSnapshot
from .handoff import is_context_note
from .rules import Rule, TemplateContext, match_groups
from .stats import ConnectionRecord


def earlier_user_texts(conversation: ContextSnapshot) -> list[str]:
    """What the user said before the turn being answered, as far as the context goes."""
    # Function responses replayed as user-role turns carry no text, and ADK's notes about
    # other agents are not the user's words: skip both.
    return [
        turn.text
        for turn in conversation.history
        if turn.role == "user" and turn.text and not is_context_note(turn)
    ][:-1]


def template_context(
    setup: Setup, conversation: ContextSnapshot, record: ConnectionRecord, text: str, rule: Rule
) -> TemplateContext:
    earlier = earlier_user_texts(conversation)
    return TemplateContext(
        text=text,
        previous=earlier[-1] if earlier else "nothing yet",
        first=earlier[0] if earlier else "nothing yet",
        turn=conversation.user_turns,
        model=setup.model_id,
        voice=setup.voice or DEFAULT_VOICE,
        language=setup.language or "the language you speak",
        thinking=setup.thinking.label if setup.thinking else "none",
        agent=record.agent,
        groups=match_groups(rule, text),
        vision=record.sight.facts(),
    )
