"""The model catalogue, and what the session options become for each model family."""

from __future__ import annotations

import pytest

from adkvoice.errors import ConfigError
from adkvoice.live_models import (
    ALL_VOICES,
    FAMILIES,
    HALF_CASCADE_VOICES,
    RECOMMENDED_MODEL,
    TEXT_REFUSAL_REASON,
    family_of,
    find_voice,
    is_text_refusal,
    mentions_text_refusal,
)
from adkvoice.live_options import (
    LiveOptions,
    from_query,
    normalize_language,
    parse_thinking,
    plan_session,
    to_query,
)

M38 = "gemini-3.8-live"
M38X = "gemini-3.8-live-extended-thinking"
M31 = "gemini-3.1-flash-live-preview"
NATIVE = "gemini-2.5-flash-native-audio-latest"
HALF = "gemini-2.0-flash-live-001"


def test_every_documented_model_is_in_its_own_family() -> None:
    for family in FAMILIES:
        for model in family.models:
            assert family_of(model) is family, model
            assert family_of(f"models/{model}") is family
    assert family_of("gemini-9.0-live") is None
    assert RECOMMENDED_MODEL == M38
    assert len(ALL_VOICES) == 30
    assert set(HALF_CASCADE_VOICES) < set(ALL_VOICES)


def test_text_refusal_is_recognised_as_gemini_and_adk_pass_it_on() -> None:
    assert is_text_refusal(1007, TEXT_REFUSAL_REASON)
    assert not is_text_refusal(1011, TEXT_REFUSAL_REASON)
    assert not is_text_refusal(1007, "Request contains an invalid argument.")
    # adk api_server closes with 1011 and the error's text, cut to 123 bytes
    assert mentions_text_refusal(f"1007 None. {TEXT_REFUSAL_REASON}"[:123])


def test_find_voice_ignores_case() -> None:
    assert find_voice("kore") == "Kore"
    assert find_voice("nobody") is None


@pytest.mark.parametrize(
    ("model", "transcript"),
    [(M38, True), (M31, True), (NATIVE, True), (HALF, False), ("x-live", False)],
)
def test_text_replies_come_from_the_transcript_of_audio_only_models(
    model: str, transcript: bool
) -> None:
    plan = plan_session(LiveOptions(), model, text_replies=True)
    assert plan.speech_as_text is transcript
    assert any("audio only" in n for n in plan.notices) is transcript
    assert not plan_session(LiveOptions(), model, text_replies=False).speech_as_text


def test_voice_is_checked_against_the_family() -> None:
    assert plan_session(LiveOptions(voice="sulafat"), M38, text_replies=False).voice == "Sulafat"
    with pytest.raises(ConfigError, match="adkvoice voices"):
        plan_session(LiveOptions(voice="Nobody"), M38, text_replies=False)
    with pytest.raises(ConfigError, match="8 voices"):
        plan_session(LiveOptions(voice="Sulafat"), HALF, text_replies=False)


def test_language_is_normalised_and_native_audio_says_it_may_not_follow() -> None:
    assert normalize_language("de-de") == "de-DE"
    assert normalize_language("ja") == "ja"
    with pytest.raises(ConfigError, match="BCP-47"):
        normalize_language("german please")
    plan = plan_session(LiveOptions(language="de-DE"), M38, text_replies=False)
    assert plan.language == "de-DE"
    assert any("chooses its spoken language" in n for n in plan.notices)
    half = plan_session(LiveOptions(language="de-DE"), HALF, text_replies=False)
    assert half.notices == ()


def test_proactive_audio() -> None:
    assert plan_session(LiveOptions(proactive=True), NATIVE, text_replies=False).proactive_audio
    plan = plan_session(LiveOptions(proactive=True), M38, text_replies=False)
    assert not plan.proactive_audio  # always on: nothing to send
    assert any("always on" in n for n in plan.notices)
    with pytest.raises(ConfigError, match="no proactive audio"):
        plan_session(LiveOptions(proactive=True), M31, text_replies=False)


def test_affective_dialog() -> None:
    assert plan_session(LiveOptions(affective=True), NATIVE, text_replies=False).affective_dialog
    for model in (M38, M31, HALF):
        with pytest.raises(ConfigError, match="no affective dialog"):
            plan_session(LiveOptions(affective=True), model, text_replies=False)


def test_thinking() -> None:
    assert parse_thinking("HIGH") == "high"
    assert parse_thinking("2048") == "2048"
    with pytest.raises(ConfigError, match="level"):
        parse_thinking("lots")
    low = plan_session(LiveOptions(thinking="low"), M31, text_replies=False).thinking
    assert low is not None
    assert low.level == "low"
    budget = plan_session(LiveOptions(thinking="0"), NATIVE, text_replies=False).thinking
    assert budget is not None
    assert budget.budget == 0
    with pytest.raises(ConfigError, match="extended-thinking"):
        plan_session(LiveOptions(thinking="low"), M38, text_replies=False)
    with pytest.raises(ConfigError, match="budget in tokens"):
        plan_session(LiveOptions(thinking="low"), NATIVE, text_replies=False)
    with pytest.raises(ConfigError, match="low, medium, high"):
        plan_session(LiveOptions(thinking="minimal"), M38X, text_replies=False)
    default = plan_session(LiveOptions(), M38X, text_replies=False)
    assert default.thinking is not None
    assert default.thinking.level == "low"
    assert any("needs a thinking level" in n for n in default.notices)


def test_unknown_model_gets_the_options_as_given() -> None:
    options = LiveOptions(voice="Kore", affective=True, thinking="high")
    plan = plan_session(options, "gemini-9.0-live", text_replies=True)
    assert (plan.voice, plan.affective_dialog, plan.speech_as_text) == ("Kore", True, False)
    assert any("not in adkvoice's model table" in n for n in plan.notices)


def test_query_parameters_round_trip_and_refuse_bad_values() -> None:
    options = LiveOptions(
        voice="Kore",
        language="de-DE",
        vad_silence_ms=800,
        vad_sensitivity="low",
        barge_in=False,
        proactive=True,
        affective=True,
        thinking="high",
    )
    assert from_query(to_query(options), LiveOptions()) == options
    assert to_query(LiveOptions()) == {}
    defaults = LiveOptions(voice="Puck")
    assert from_query({}, defaults) == defaults
    for query, message in (
        ({"barge_in": "maybe"}, "true or false"),
        ({"vad_silence_ms": "-5"}, "vad_silence_ms"),
        ({"vad_silence_ms": "99999"}, "vad_silence_ms"),
        ({"vad_sensitivity": "medium"}, "low or high"),
        ({"thinking": "lots"}, "level"),
        ({"language": "??"}, "BCP-47"),
    ):
        with pytest.raises(ConfigError, match=message):
            from_query(query, LiveOptions())
