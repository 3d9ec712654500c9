"""``campaign-express`` processes started as an operator would, for e2e and fleet tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

CLI = shutil.which("campaign-express", path=str(Path(sys.executable).parent)) or "campaign-express"


class CliProcess:
    """One ``campaign-express <command>`` with its output in a log file the test can show."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.args = args
        self.log = log
        self._log_file = log.open("wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CE_")} | dict(env)
        self.process = subprocess.Popen(  # the CLI this checkout installed
            [CLI, *args], env=full_env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.args} exited {self.process.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.args} did not print {text!r}:\n{self.output()}")
            time.sleep(0.05)

    def wait_for_http(self, url: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.args} exited {self.process.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer:\n{self.output()}")
            time.sleep(0.1)

    def wait(self, timeout_s: float = 60) -> int:
        """For commands that finish by themselves; returns the exit code."""
        try:
            return self.process.wait(timeout_s)
        finally:
            self._log_file.close()

    def terminate(self, timeout_s: float = 20) -> int:
        """SIGTERM, as an orchestrator stops a process; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        self.process.kill()
        self.process.wait()
        self._log_file.close()
