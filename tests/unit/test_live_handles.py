"""Resumption handles kept on disk, per conversation, for two hours."""

from __future__ import annotations

import os
from pathlib import Path

from adkvoice.store.handles import HandleStore, handle_key


def test_a_saved_handle_is_loaded_until_it_expires(tmp_path: Path) -> None:
    store = HandleStore(tmp_path / "handles", ttl_s=100)
    key = handle_key("endpoint", "model", "store", "app", "user", "s1")
    store.save(key, "h-1", now=1_000)
    store.save(key, "h-2", now=1_010)
    loaded = store.load(key, now=1_100)
    assert loaded is not None
    assert loaded.handle == "h-2"
    assert store.load(key, now=1_111) is None
    assert not any((tmp_path / "handles").iterdir())  # an expired handle is deleted


def test_keys_separate_endpoints_and_conversations(tmp_path: Path) -> None:
    store = HandleStore(tmp_path)
    store.save(handle_key("emulator:1", "m", "s", "a", "u", "c"), "h", now=0)
    assert store.load(handle_key("emulator:2", "m", "s", "a", "u", "c"), now=0) is None
    assert store.load(handle_key("emulator:1", "m", "s", "a", "u", "other"), now=0) is None


def test_a_corrupt_file_is_treated_as_no_handle(tmp_path: Path) -> None:
    store = HandleStore(tmp_path)
    key = handle_key("x")
    (tmp_path / f"{key}.json").write_text("{not json")
    assert store.load(key) is None


def test_an_unwritable_directory_is_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    HandleStore(blocker / "handles").save("k", "h")  # logged, not raised


def test_prune_removes_only_expired_files(tmp_path: Path) -> None:
    store = HandleStore(tmp_path, ttl_s=100)
    store.save("old", "h", now=0)
    store.save("new", "h", now=0)
    os.utime(tmp_path / "old.json", (0, 0))
    assert store.prune() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["new.json"]
