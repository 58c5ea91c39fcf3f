"""The render process never outlives the sender that started it, however it died."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PARENT = """
import os, sys, time
from digest.config import Settings
from digest.db import make_engine
from digest.delivery.sender import RenderPool

settings = Settings(database_url=sys.argv[1], render_processes=1)
pool = RenderPool(make_engine(settings.sqlalchemy_url), settings)
pool.executor.submit(os.getpid)  # starts the render process
print(*pool.executor._processes, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_a_render_process_ends_when_its_sender_is_killed_while_it_starts(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DIGEST_VAR_DIR": str(tmp_path / "var")},
    )
    assert parent.stdout is not None
    with parent.stdout:
        [child] = [int(pid) for pid in parent.stdout.readline().split()]
        parent.send_signal(signal.SIGKILL)  # before the render process got to its setup
        parent.wait()
    deadline = time.monotonic() + 30
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    still = alive(child)
    if still:
        os.kill(child, signal.SIGKILL)
    assert not still, "the render process outlived its sender"
