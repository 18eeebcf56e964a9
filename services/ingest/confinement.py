"""What a child process that parses untrusted bytes can see and do.

Both sides live here: the parent builds the child's command and environment
(:func:`confined_child`), the child confines itself before it reads a byte
(:func:`enter_confinement`).

- **Environment**: an allow-list (``PATH``, the locale, ``PYTHONPATH``, the thread caps, the
  child's own limits); ``HOME`` and ``TMPDIR`` are a fresh private directory, which is also
  the working directory. No token, storage key, database or Redis URL, API key, ever.
- **Linux namespaces** (``unshare -rmnpf --mount-proc``, when the kernel allows it, probed
  once): no network at all (a new network namespace has only a loopback that is down); a PID
  namespace with its own ``/proc`` (the bot process, and its ``/proc/PID/environ``, are not
  there); a mount namespace in which the bot's data directory is covered by an empty tmpfs
  and every mount is read-only except the private directory.
- **In the child, everywhere**: an audit hook refuses to create sockets, so even without
  namespaces (another OS, a kernel that refuses them) Python code in the child cannot open one.

Hand-written because the pieces are the kernel's (``unshare`` from util-linux, ``mount(2)``):
sandboxing tools such as bubblewrap or nsjail are not Python packages, and would be one more
binary to install for what these few lines do.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

PASSED_THROUGH = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "PYTHONPATH",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "MKL_NUM_THREADS",
)
"""The only variables of the bot's environment a confined child gets."""
HIDE_VARIABLE = "CONDENSA_HIDE"
PRIVATE_VARIABLE = "CONDENSA_PRIVATE_DIR"
UNSHARE = (
    "unshare",
    "--user",
    "--map-root-user",
    "--mount",
    "--net",
    "--pid",
    "--fork",
    "--kill-child",
)

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
_KEPT_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}


@functools.cache
def namespaces_available() -> bool:
    """Whether ``unshare`` can give a child its own user, mount, network and PID namespaces
    here (probed once per process)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [*UNSHARE, "--mount-proc", "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    if done.returncode != 0:
        logger.warning(
            "untrusted files are parsed without network and file isolation: unshare failed "
            "(%s); the child still gets no secrets and cannot open sockets from Python",
            done.stderr.decode(errors="replace").strip()[:200],
        )
        return False
    return True


def confined_child(
    module: str,
    private_dir: Path,
    hide: Sequence[Path] = (),
    extra_env: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run ``python -m module`` confined.

    Args:
        module: the child's module.
        private_dir: a fresh, empty directory: the child's working directory, HOME and TMPDIR
            (the only place it can write when namespaces are available).
        hide: directories covered by an empty tmpfs in the child (the bot's data directory).
        extra_env: the child's own settings (its limits).
    """
    env = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "HOME": str(private_dir),
            "TMPDIR": str(private_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
            PRIVATE_VARIABLE: str(private_dir),
            HIDE_VARIABLE: os.pathsep.join(str(Path(p).resolve()) for p in hide),
        }
    )
    env.update(extra_env or {})
    command = [sys.executable, "-m", module]
    if namespaces_available():
        command = [*UNSHARE, "--mount-proc", *command]
    return command, env


def _mount(source: str, target: str, kind: str | None, flags: int, options: str | None) -> bool:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.mount(
        source.encode(),
        target.encode(),
        kind.encode() if kind else None,
        ctypes.c_ulong(flags),
        options.encode() if options else None,
    )
    return int(result) == 0


def _mounts() -> list[tuple[str, int]]:
    """(mount point, flags to keep on a remount) of every mount, from mountinfo."""
    found: list[tuple[str, int]] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            fields = line.split()
            point = fields[4].replace("\\040", " ")
            flags = 0
            for option in fields[5].split(","):
                flags |= _KEPT_FLAGS.get(option, 0)
            found.append((point, flags))
    return found


def _refuse_sockets(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.__new__" or event.startswith("socket.connect"):
        raise PermissionError("network access is not allowed while parsing untrusted files")


def enter_confinement() -> None:
    """Called first thing in a confined child: refuse sockets; inside namespaces, cover the
    hidden directories and make every other mount read-only."""
    sys.addaudithook(_refuse_sockets)
    private = os.environ.get(PRIVATE_VARIABLE, "")
    hidden = [p for p in os.environ.get(HIDE_VARIABLE, "").split(os.pathsep) if p]
    if sys.platform != "linux" or os.getpid() != 1:
        return  # not in our PID namespace: nothing more to do here
    for path in hidden:
        sealed = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
        if os.path.isdir(path) and not _mount("none", path, "tmpfs", sealed, "size=1m,mode=000"):
            raise PermissionError(f"could not hide {path}")
    for point, flags in reversed(_mounts()):
        if point in hidden or point == private or point.startswith("/proc"):
            continue
        _mount("none", point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None)
    if private:
        # The private directory is the one writable place: its own small tmpfs.
        _mount("none", private, "tmpfs", 0, "size=64m,mode=700")
        os.chdir(private)
