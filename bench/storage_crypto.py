"""What encryption at rest costs a digest: 10,000 stored messages, sealed and not.

Both stores run the same SQL on the same rows in the same process; the only difference is the
cipher: AES-256-GCM per field (as deployed) or an identity cipher (bytes stored as they are).
Timed, median of ``--runs`` alternating runs (warm: a first digest of the same window loads
MiniLM and fills the phrase cache before any timing):
storing the messages, loading the window a ``/digest 10000`` reads, the digest itself, and
load + digest together (what a user waits for, minus Telegram).

    .venv/bin/python bench/storage_crypto.py [--messages 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.digest_speed import GROUP_ID, conversation  # noqa: E402
from services.core.executor import ModelExecutor  # noqa: E402
from services.digest.service import DigestService  # noqa: E402
from services.keywords.extractor import KeyBERTExtractor  # noqa: E402
from services.storage.sqlite import SQLiteStore  # noqa: E402


class IdentityCipher:
    """Stores the UTF-8 bytes as they are: the "without encryption" side of the comparison."""

    def seal(self, message_id: int, field: str, value: str) -> bytes:
        return value.encode("utf-8")

    def open(self, message_id: int, field: str, sealed: bytes) -> str:
        return sealed.decode("utf-8")


class PlainStore(SQLiteStore):
    """The same store and SQL with the identity cipher (bench only; never deployed)."""

    async def _cipher(self, tx: Any, chat_id: int, create: bool) -> Any:
        return IdentityCipher()


async def measure(kind: type[SQLiteStore], count: int, runs: int, digests: DigestService) -> dict:
    messages = conversation(count)
    timings: dict[str, list[float]] = {"store": [], "load": [], "digest": [], "load+digest": []}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as directory:
            store = await kind.open(Path(directory) / "condensa.sqlite3")
            try:
                started = time.perf_counter()
                await store.save_messages(messages)
                timings["store"].append(time.perf_counter() - started)
                started = time.perf_counter()
                window = await store.messages(GROUP_ID, last=count)
                loaded = time.perf_counter()
                await digests.digest(window)
                done = time.perf_counter()
            finally:
                await store.close()
        assert len(window) == count
        timings["load"].append(loaded - started)
        timings["digest"].append(done - loaded)
        timings["load+digest"].append(done - started)
    return {name: statistics.median(values) for name, values in timings.items()}


async def run(count: int, runs: int) -> dict[str, Any]:
    executor = ModelExecutor(1, 4)
    keywords = KeyBERTExtractor(executor)
    digests = DigestService(executor, keywords.backend, keywords.cache)
    # Warm: MiniLM loaded and the phrase-embedding cache filled by the same window, so both
    # sides digest against the same warm cache; runs alternate between the two stores.
    await digests.digest(conversation(count))
    sealed_runs, plain_runs = [], []
    for _ in range(runs):
        sealed_runs.append(await measure(SQLiteStore, count, 1, digests))
        plain_runs.append(await measure(PlainStore, count, 1, digests))
    sealed = {k: statistics.median(r[k] for r in sealed_runs) for k in sealed_runs[0]}
    plain = {k: statistics.median(r[k] for r in plain_runs) for k in plain_runs[0]}
    executor.shutdown()
    return {"messages": count, "runs": runs, "encrypted": sealed, "plain": plain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report = asyncio.run(run(args.messages, args.runs))
    print(f"{report['messages']:,} messages, median of {report['runs']} runs (seconds)")
    print(f"{'step':<12} {'AES-GCM':>9} {'plain':>9} {'cost':>9}")
    for step in ("store", "load", "digest", "load+digest"):
        sealed, plain = report["encrypted"][step], report["plain"][step]
        print(f"{step:<12} {sealed:9.3f} {plain:9.3f} {sealed - plain:+9.3f}")
    out = REPO / "bench" / "results" / "storage_crypto.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
