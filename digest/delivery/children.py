"""Worker processes that end with the process that started them (render, planning)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def pool(size: int, initializer: Any, initargs: tuple[Any, ...]) -> ProcessPoolExecutor:
    """`size` spawned processes, each set up by `initializer(*initargs, parent_pid)`
    called through `_start`, so that it ends when this process does."""
    return ProcessPoolExecutor(
        max_workers=size,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start,
        initargs=(os.getpid(), initializer, initargs),
    )


def _start(parent: int, initializer: Any, initargs: tuple[Any, ...]) -> None:
    """First of all, make this process end when `parent` is gone, even if the parent was
    killed before this ran; then set it up."""
    _die_with_parent()
    if os.getppid() != parent:  # the parent died while this process was starting
        os._exit(0)
    threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    initializer(*initargs)


def _die_with_parent() -> None:
    """On Linux, ask the kernel to SIGKILL this process when its parent dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _exit_with(parent: int) -> None:
    """End the process when its parent is gone (where prctl is not available)."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)
