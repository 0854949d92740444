import asyncio
import io

from adkvoice.ui.line_input import LineReader


async def test_piped_lines_then_end() -> None:
    reader = LineReader(asyncio.get_running_loop(), io.StringIO("a\r\nb\n\nc"), interactive=False)
    reader.start()
    lines = [await reader.next_line() for _ in range(5)]
    assert lines == ["a", "b", "", "c", None]


async def test_interactive_reads_only_when_asked() -> None:
    asked: list[str] = []
    answers = iter(["first", "second"])

    def fake_input(prompt: str) -> str:
        asked.append(prompt)
        try:
            return next(answers)
        except StopIteration:
            raise EOFError from None

    reader = LineReader(
        asyncio.get_running_loop(),
        io.StringIO(),
        interactive=True,
        prompt="you › ",
        read_prompted=fake_input,
    )
    reader.start()
    await asyncio.sleep(0.05)
    assert asked == []  # no prompt before the app asks for a line
    assert await reader.next_line() == "first"
    assert await reader.next_line() == "second"
    assert await reader.next_line() is None
    assert asked == ["you › "] * 3
