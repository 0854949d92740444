import pytest

from adkvoice.config import choose_backend, credentials_source
from adkvoice.errors import ConfigError


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"GOOGLE_API_KEY": "k"}, "GOOGLE_API_KEY"),
        ({"GEMINI_API_KEY": "k"}, "GEMINI_API_KEY"),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "TRUE", "GOOGLE_CLOUD_PROJECT": "p"}, "Vertex AI"),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "1"}, None),
        ({"GOOGLE_GENAI_USE_VERTEXAI": "false", "GOOGLE_API_KEY": "k"}, "GOOGLE_API_KEY"),
    ],
)
def test_credentials_source(env: dict[str, str], expected: str | None) -> None:
    assert credentials_source(env) == expected


def test_auto_picks_the_emulator_without_credentials() -> None:
    assert choose_backend("auto", {}) == "emulator"
    assert choose_backend("auto", {"GOOGLE_API_KEY": "k"}) == "gemini"
    assert choose_backend("emulator", {"GOOGLE_API_KEY": "k"}) == "emulator"


def test_forcing_gemini_without_credentials_says_what_to_set() -> None:
    with pytest.raises(ConfigError, match="GOOGLE_API_KEY") as info:
        choose_backend("gemini", {})
    assert "\n" not in str(info.value)


def test_context_compression_values() -> None:
    from adkvoice.config import parse_context_compression

    assert parse_context_compression("on") == 0
    assert parse_context_compression("OFF") is None
    assert parse_context_compression("32_000") == 32_000
    for bad in ("lots", "10"):
        with pytest.raises(ConfigError, match="--context-compression"):
            parse_context_compression(bad)
