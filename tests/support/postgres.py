"""A throwaway PostgreSQL cluster (Debian's package) for the tests, on loopback.

As ``pytest-postgresql`` does: ``initdb`` into a temporary directory, ``postgres`` on a
free port of 127.0.0.1 (its socket in the same directory), no fsync, trust
authentication for the one test role; stopped (fast shutdown) and deleted at the end.
PostgreSQL refuses to run as root: as root, the cluster belongs to the ``postgres``
system user the package creates.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.smtp import free_port

_BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
BIN = Path(_BINARIES[-1]) if _BINARIES else None
AVAILABLE = BIN is not None and (BIN / "initdb").exists()
ROLE = "tramita"


class Postgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tramita-pg-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._user = "postgres" if os.geteuid() == 0 else None

    def url(self, database: str = "tramita") -> str:
        return f"postgresql+psycopg://{ROLE}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        assert BIN is not None
        data = self.root / "data"
        if self._user is not None:
            account = pwd.getpwnam(self._user)
            os.chown(self.root, account.pw_uid, account.pw_gid)
        subprocess.run(
            [str(BIN / "initdb"), "-D", str(data), "-U", ROLE, "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
            user=self._user,
        )
        log = (self.root / "postgres.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-k",
                str(self.root),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            user=self._user,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=self.port, user=ROLE, dbname="postgres", autocommit=True
                ) as connection:
                    connection.execute(f"CREATE DATABASE {ROLE}")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(
                        "PostgreSQL did not start: "
                        + (self.root / "postgres.log").read_text(errors="replace")[-2000:]
                    ) from None
                time.sleep(0.1)

    def create_database(self, name: str) -> str:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=ROLE, dbname=ROLE, autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGINT)  # fast shutdown
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)
