"""A real dovecot IMAP server for the email tests, started from a generated config.

Everything lives in a temporary directory: config, maildirs, sockets, logs. It
listens on 127.0.0.1 on a free port, without TLS, with one test user from a
passwd-file, and runs as the current user so no privileges are needed.
"""

from __future__ import annotations

import atexit
import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = helpdesk-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
login_trusted_networks = 127.0.0.0/8
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_location = maildir:{root}/mail/%u
mail_plugins =
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Processed {{
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service auth {{
  user = {user}
}}
service auth-worker {{
  user = {user}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DovecotServer:
    user = "support"
    password = "imap-pass-123"
    host = "127.0.0.1"

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="helpdesk-dovecot-"))
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def _accounts(self):
        """(internal user, group, login user, mail uid, mail gid).

        Unprivileged, dovecot runs everything as us. As root (a CI container),
        dovecot refuses to run its login and mail processes as root: use the
        package's own users, or nobody."""
        if os.getuid() != 0:
            account = pwd.getpwuid(os.getuid())
            group = grp.getgrgid(os.getgid()).gr_name
            return account.pw_name, group, account.pw_name, os.getuid(), os.getgid()

        def user(*names):
            for name in names:
                try:
                    return pwd.getpwnam(name)
                except KeyError:
                    continue
            raise RuntimeError(f"None of the users {names} exists for dovecot to run as.")

        internal = user("dovecot", "nobody")
        login = user("dovenull", "nobody")
        mail = user("nobody")
        return (
            internal.pw_name,
            grp.getgrgid(internal.pw_gid).gr_name,
            login.pw_name,
            mail.pw_uid,
            mail.pw_gid,
        )

    def start(self) -> DovecotServer:
        internal, group, login, uid, gid = self._accounts()
        os.chmod(self.root, 0o755)
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir()
        for sub in ("mail", "home"):
            if os.getuid() == 0:
                os.chown(self.root / sub, uid, gid)
        (self.root / "users").write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        conf = self.root / "dovecot.conf"
        conf.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                user=internal,
                group=group,
                login_user=login,
                uid=uid,
                gid=gid,
            )
        )
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        # A test run that dies before its teardown must not leave a dovecot behind.
        atexit.register(self.stop)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log()
                self.stop()
                raise RuntimeError(f"dovecot exited: {log}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"dovecot did not start listening: {log}")

    def log(self) -> str:
        path = self.root / "dovecot.log"
        output = ""
        if self.process and self.process.poll() is not None and self.process.stdout:
            output = self.process.stdout.read().decode(errors="replace")
        return output + (path.read_text(errors="replace") if path.exists() else "")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, raw: bytes, folder: str = "INBOX", flags: str | None = None) -> None:
        conn = self.client()
        try:
            typ, data = conn.append(folder, flags, None, raw)
            assert typ == "OK", data
        finally:
            conn.logout()

    def empty(self, *folders: str) -> None:
        """Delete every message, so each test starts from empty folders (UIDs keep growing)."""
        conn = self.client()
        try:
            for folder in folders or ("INBOX", "Processed"):
                typ, data = conn.select(folder)
                if typ != "OK" or data[0] == b"0":
                    continue
                conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
                conn.expunge()
        finally:
            conn.logout()
