"""A PostgreSQL server of the scenario's own, in a temporary directory, that it can stop and
start again: the shared server on 5432 serves the other tests and must never go down.

Built with the binaries of the installed PostgreSQL (``initdb``, ``pg_ctl``). PostgreSQL refuses
to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from driftline.collector.runtime.broker import free_port


def _binary(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise RuntimeError(f"no PostgreSQL {name} in /usr/lib/postgresql/*/bin or on PATH")
    return found[-1]


class PrivatePostgres:
    def __init__(self) -> None:
        # A directory of its own: the postgres user must be able to reach it, and a test's
        # temporary directory is private to root.
        self._directory = Path(tempfile.mkdtemp(prefix="driftline-postgres-"))
        self._data = self._directory / "data"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def __enter__(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            shutil.chown(self._directory, "postgres")
        self._run("initdb", "-D", str(self._data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self._directory, ignore_errors=True)

    def start(self) -> None:
        options = f"-p {self.port} -k {self._directory} -c listen_addresses=127.0.0.1"
        log = str(self._directory / "server.log")
        self._run("pg_ctl", "-D", str(self._data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """A fast shutdown: open sessions are ended, new connections refused."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def _run(self, tool: str, *arguments: str) -> None:
        command = [_binary(tool), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr[-2000:]}")
