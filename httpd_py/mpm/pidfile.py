"""The PidFile: written by the master once it serves, removed when it stops; read by ``-k``."""
from __future__ import annotations

import os


def write(path: str, pid: int | None = None) -> None:
    """Write ``pid`` (default: ours) atomically: a reader sees the old file or the new one."""
    pid = os.getpid() if pid is None else pid
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read(path: str) -> int | None:
    """The pid in the file, or None when there is no file or it holds no number."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def running(path: str) -> int | None:
    """The pid of a live server named by the PidFile, or None."""
    pid = read(path)
    return pid if pid is not None and alive(pid) else None


def remove(path: str, pid: int | None = None) -> None:
    """Remove the PidFile if it still names ``pid`` (default: us)."""
    pid = os.getpid() if pid is None else pid
    if read(path) == pid:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
