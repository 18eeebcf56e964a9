"""Stands in for a hostile file's payload in the confined child: run exactly as the document
parser is (``services.ingest.documents.run_confined``), it reports what it could reach."""

from __future__ import annotations

import json
import os
import socket
import sys

from services.ingest.confinement import enter_confinement


def attempt(action: object) -> str:
    try:
        return f"ok: {action()}"  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - every refusal is a finding
        return f"refused: {type(exc).__name__}"


def read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def write(path: str, text: str) -> int:
    with open(path, "w", encoding="utf-8") as file:
        return file.write(text)


def main() -> int:
    enter_confinement()
    header = json.loads(sys.stdin.buffer.readline())
    secret = header["secret"]
    hidden = header["hidden"]
    leaked_in_proc = 0
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                leaked_in_proc += secret.encode() in environ.read()
        except OSError:
            pass
    report = {
        "env_secrets": sorted(k for k, v in os.environ.items() if secret in v),
        "proc_environ_leaks": leaked_in_proc,
        "data_dir": attempt(lambda: sorted(os.listdir(hidden))),
        "database": attempt(lambda: read(os.path.join(hidden, "condensa.sqlite3"))),
        "socket": attempt(lambda: socket.create_connection(("127.0.0.1", header["port"]), 2)),
        "write_outside": attempt(lambda: write(header["outside"], "planted")),
        "write_private": attempt(lambda: write("scratch.txt", "fine")),
    }
    sys.stdout.write(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
