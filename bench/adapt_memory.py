"""Peak memory and time of ``condensa adapt`` (LoRA on SmolLM2-135M) from a fresh data directory.

Runs ``python -m bot adapt`` on the first N CNN/DailyMail pairs of the shared evaluation set
(one learning rate, one rank, one stage: the memory of a step does not depend on how many
there are), samples the resident set of the process and of its children every 0.1 s, and
reports the peak of each: the adapt process itself, and the one-off child that converts the
shipped GGUF into a transformers model (cached afterwards). Writes bench/results/adapt_memory.json.

    .venv/bin/python bench/adapt_memory.py [--pairs 16]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEWS = REPO.parent / "shared" / "data" / "eval" / "summ_en_cnndm_summeval100.jsonl"


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        return [int(child) for task in tasks for child in (task / "children").read_text().split()]
    except OSError:
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--pairs", type=int, default=16)
    args = parser.parse_args()
    if not NEWS.exists():
        print(f"{NEWS} is missing: nothing to adapt on", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pairs.jsonl"
        data.write_text("".join(NEWS.read_text().splitlines(keepends=True)[: args.pairs]))
        env = {**os.environ, "DATA_DIR": str(Path(tmp) / "data"), "PYTHONPATH": str(REPO)}
        command = [sys.executable, "-m", "bot", "adapt", "--data", str(data), "--name", "bench"]
        command += ["--lang", "en", "--learning-rates", "5e-4", "--ranks", "8"]
        command += ["--epochs", "1", "--stages", "1", "--no-progress"]
        started = time.monotonic()
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        peak_main = peak_child = 0.0
        while process.poll() is None:
            peak_main = max(peak_main, rss_mb(process.pid))
            for child in children(process.pid):
                peak_child = max(peak_child, rss_mb(child))
            time.sleep(0.1)
        seconds = time.monotonic() - started
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    if process.returncode != 0:
        print(output[-2000:], file=sys.stderr)
        return process.returncode
    report = {
        "pairs": args.pairs,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_main),
        "conversion_child_peak_rss_mb": round(peak_child),
    }
    print(
        f"condensa adapt, {args.pairs} pairs, SmolLM2-135M: {report['seconds']} s; peak RSS "
        f"{report['peak_rss_mb']} MB (GGUF conversion child, once: "
        f"{report['conversion_child_peak_rss_mb']} MB)"
    )
    out = REPO / "bench" / "results" / "adapt_memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
