"""The watchdog: what a driver started ends when the driver is killed, and nothing else is touched."""

import subprocess
import sys
import time

import psutil

SCRIPT = """
import subprocess, sys, time
from mecl_utils.run import reaper
watchdog = reaper.watch()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
time.sleep(2.5)  # the watchdog notes its driver's children every second
print(child.pid, watchdog.pid, flush=True)
time.sleep(300)
"""


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_killing_the_driver_ends_its_children_and_the_watchdog():
    driver = subprocess.Popen([sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True)
    child, watchdog = map(int, driver.stdout.readline().split())
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # not the driver's
    try:
        driver.kill()
        driver.wait()
        assert _gone(child, within=10) and _gone(watchdog, within=10)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        for pid in (child, watchdog):
            if psutil.pid_exists(pid):
                psutil.Process(pid).kill()
