"""Nothing outlives the driver: a watchdog that ends the processes a command started when it dies.

A notebook's "restart kernel", or ``kill -9`` of ``python -m mecl_utils run``, ends the driver without
letting it shut its embedded Ray instance down. Ray's core processes share the driver's fate, but some of
its helpers (the dashboard and runtime-environment agents) only notice after a minute or more, and a
worker in the middle of a run keeps its memory until then. :func:`watch` starts a small separate process
that notes, every second, which processes descend from the driver, and waits on a pipe whose other end
only the driver holds. The kernel closes that pipe however the driver ends; the watchdog then kills what
it noted (each checked by its start time, so a reused process id is never touched) and exits. A driver
that ends normally closes the pipe itself, after Ray has shut down, with the same effect.

    python -m mecl_utils.run.reaper PID     # what watch() starts; reads its stdin until end of file
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import psutil

__all__ = ["watch"]

INTERVAL_SECONDS = 1.0


def watch() -> subprocess.Popen:
    """Start the watchdog for this process; closing its ``stdin`` (or dying) sets it off."""
    return subprocess.Popen(
        [sys.executable, "-m", "mecl_utils.run.reaper", str(psutil.Process().pid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in the terminal is for the driver, not for its watchdog
    )


def _descendants(driver: psutil.Process, seen: dict[int, float], me: int) -> None:
    try:
        children = driver.children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        if child.pid != me:
            try:
                seen.setdefault(child.pid, child.create_time())
            except psutil.Error:
                pass


def _kill(seen: dict[int, float]) -> None:
    for pid, started in seen.items():
        try:
            process = psutil.Process(pid)
            if process.create_time() == started:
                process.kill()
        except psutil.Error:
            pass


def main(pid: int) -> None:
    driver, me, seen = psutil.Process(pid), psutil.Process().pid, {}
    done = threading.Event()

    def note() -> None:
        while not done.is_set():
            _descendants(driver, seen, me)
            time.sleep(INTERVAL_SECONDS)

    threading.Thread(target=note, daemon=True).start()
    sys.stdin.buffer.read()  # returns when the driver closes the pipe or dies
    done.set()
    _kill(seen)


if __name__ == "__main__":
    main(int(sys.argv[1]))
