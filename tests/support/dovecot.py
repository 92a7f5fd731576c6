"""A throwaway Dovecot IMAP server (Debian's package) for the tests, on loopback.

It writes its own configuration, users (plain passwords), maildir and logs under a
short temporary directory, listens on a free port of 127.0.0.1, and touches nothing of
the system's Dovecot. As root, the login process runs as ``dovenull`` and mail as
``nobody`` (Dovecot refuses root for both). Stopping signals the whole process group,
so logged-in sessions end at once, as in a real restart.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.smtp import free_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
AVAILABLE = Path(DOVECOT).exists() and Path(DOVEADM).exists()

# Dovecot's own capabilities, less IDLE.
WITHOUT_IDLE = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ AUTH=PLAIN AUTH=LOGIN"

CONFIG = """\
# Written by the Tramita test suite for one test session; nothing here is the system's.
instance_name = {instance}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
mail_uid = {mail_uid}
mail_gid = {mail_gid}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
mailbox_idle_check_interval = 1 secs
namespace inbox {{
  inbox = yes
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/home/%u
}}
protocol imap {{
  mail_max_userip_connections = 100
  {capability}
}}
service imap-login {{
  {login_chroot}
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  {anvil_chroot}
}}
"""


class Dovecot:
    def __init__(self, users: dict[str, str], *, idle: bool = True) -> None:
        """``idle=False``: a server that does not offer IDLE (Tramita then polls)."""
        self.users = users
        self.capability = "" if idle else f"imap_capability = {WITHOUT_IDLE}"
        self.port = free_port()
        # Short, and open to the mail user: Dovecot's sockets need paths under ~100
        # bytes, and pytest's own temporary directories are private to root.
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-", dir="/tmp"))
        self.root.chmod(0o755)
        self.process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            try:
                login = pwd.getpwnam("dovenull").pw_name
            except KeyError:
                login = "nobody"
            return CONFIG.format(
                instance=f"tramita-{self.port}",
                root=self.root,
                port=self.port,
                internal_user="root",
                internal_group="root",
                login_user=login,
                mail_uid=nobody.pw_uid,
                mail_gid=nobody.pw_gid,
                login_chroot="",
                anvil_chroot="",
                capability=self.capability,
            )
        me = pwd.getpwuid(os.getuid())
        return CONFIG.format(
            instance=f"tramita-{self.port}",
            root=self.root,
            port=self.port,
            internal_user=me.pw_name,
            internal_group=me.pw_name,
            login_user=me.pw_name,
            mail_uid=os.getuid(),
            mail_gid=os.getgid(),
            login_chroot="chroot =",
            anvil_chroot="chroot =",
            capability=self.capability,
        )

    def start(self) -> None:
        for name in ("run", "state", "home"):
            (self.root / name).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root / "home", nobody.pw_uid, nobody.pw_gid)
        (self.root / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in self.users.items())
        )
        (self.root / "dovecot.conf").write_text(self._config())
        log = (self.root / "dovecot.stderr").open("ab")
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dovecot exited:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not answer:\n{self.log()}")

    def stop(self, *, crash: bool = False) -> None:
        """Stop it (``crash``: SIGKILL, no goodbye), keeping its maildir."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL if crash else signal.SIGTERM)
        self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        parts = []
        for name in ("dovecot.log", "dovecot.stderr"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Put a message in a mailbox as a mail client would (IMAP APPEND)."""
        imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        try:
            imap.login(user, self.users[user])
            status, data = imap.append(folder, None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND refused: {data!r}")
        finally:
            imap.logout()

    def set_uidvalidity(self, user: str, value: int, folder: str = "INBOX") -> None:
        subprocess.run(
            [
                DOVEADM,
                "-c",
                str(self.root / "dovecot.conf"),
                "mailbox",
                "update",
                "-u",
                user,
                "--uid-validity",
                str(value),
                folder,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
