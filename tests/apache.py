"""A private Apache 2 serving a copy of the checkout, as in production, for tests.

The copy gets the project's real .htaccess, a lines.ini and ovh.conf pointing at the OVH
simulator, a data folder written by the web server, and a .venv3 with requirements.txt.
Apache runs in the foreground as a child of the tests, with its own configuration file,
in FastCGI mode (mod_fcgid) or CGI mode (mod_cgid); rewrite=False leaves mod_rewrite out, to
check that the .htaccess then serves nothing.
"""

import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import requests
from webpage import Browser, write_lines_ini

from cimade_ovh.config import load_settings
from cimade_ovh.sharing import change_stamp

ROOT = Path(__file__).resolve().parent.parent
MODULES_DIR = Path("/usr/lib/apache2/modules")
# The environment Debian's apache2ctl gives Apache: index.py's "#!/usr/bin/env python3" finds /usr/bin/python3.
APACHE_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}
COMMON_MODULES = (
    "mpm_event",
    "authz_core",
    "authz_host",
    "mime",
    "dir",
    "alias",
    "rewrite",
    "headers",
    "env",
    "setenvif",
)
MODE_MODULES = {"fastcgi": ("fcgid",), "cgi": ("cgid",)}
WEB_USER = "www-data"
# What is not copied into the site: caches, local state and secrets of the checkout (tests running
# in another process write some of them meanwhile).
NOT_COPIED = shutil.ignore_patterns(
    ".venv*", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "screenshots", "data", "ovh.conf", "*.log"
)

CONFIGURATION = """\
# A private Apache for the tests: only what cimade-ovh needs.
ServerRoot "{folder}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{folder}/apache2.pid"
DefaultRuntimeDir "{folder}/run"
ErrorLog "{folder}/error.log"
LogLevel warn
{modules}
{user}
TypesConfig "{mime_types}"

# As in the README: the site folder lets its .htaccess decide everything.
DocumentRoot "{site}"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{site}">
    AllowOverride All
    Require all granted
</Directory>
{mode_settings}
"""

MODE_SETTINGS = {
    "fastcgi": 'FcgidIPCDir "{folder}/run/fcgid"\nFcgidProcessTableFile "{folder}/run/fcgid_shm"',
    "cgi": 'ScriptSock "{folder}/run/cgisock"',
}


def unavailable(mode):
    """Why Apache cannot run the page in this mode here, or None when it can."""
    if not shutil.which("apache2", path=APACHE_ENV["PATH"]):
        return "apache2 is not installed (apt-get install apache2 libapache2-mod-fcgid)"
    missing = [m for m in COMMON_MODULES + MODE_MODULES[mode] if not module_path(m).exists()]
    if missing:
        return f"Apache modules missing from {MODULES_DIR}: {', '.join(missing)}"
    if not shutil.which("python3", path=APACHE_ENV["PATH"]):
        return f"no python3 on Apache's PATH ({APACHE_ENV['PATH']})"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(WEB_USER)
        except KeyError:
            return f"running as root, but the user {WEB_USER} does not exist"
    return None


def module_path(name):
    return MODULES_DIR / f"mod_{name}.so"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def site_virtualenv():
    """A .venv3 with requirements.txt for the python3 Apache runs; built once, kept in the temporary folder."""
    python = shutil.which("python3", path=APACHE_ENV["PATH"])
    version = subprocess.run([python, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    key = hashlib.sha256((ROOT / "requirements.txt").read_bytes() + python.encode() + version.encode() + b"in place")
    venv = Path(tempfile.gettempdir()) / f"cimade-ovh-venv3-{os.geteuid()}-{key.hexdigest()[:12]}"
    with open(f"{venv}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Test processes running at once wait for one to build it.
        if (venv / "ready").exists() and venv.stat().st_uid == os.geteuid():
            return venv
        return build_virtualenv(python, venv)


def build_virtualenv(python, venv):
    """Build the site's .venv3 where it stays (its bin/pip names its own path), marked ready once complete."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements.txt")], check=True, stdout=subprocess.DEVNULL)
    os.chmod(venv, 0o755)
    (venv / "ready").touch()
    return venv


class Apache(Browser):
    """A running private Apache serving a copy of the checkout on the OVH simulator."""

    def __init__(self, mode, fake, venv, rewrite=True, also=()):
        self.mode = mode
        self.fake = fake
        self.modules = [m for m in COMMON_MODULES + MODE_MODULES[mode] + tuple(also) if rewrite or m != "rewrite"]
        self.modes = [mode] + [m for m, needs in MODE_MODULES.items() if set(needs) <= set(also)]  # Their settings.
        self.folder = Path(tempfile.mkdtemp(prefix=f"cimade-ovh-apache-{mode}-"))
        self.site = self.folder / "site"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.token = ""
        self.process = None
        self.install_site(venv)
        self.write_configuration()
        self.start()

    # The site, as the README installs it.

    def install_site(self, venv):
        shutil.copytree(ROOT, self.site, symlinks=True, ignore=NOT_COPIED)
        # As the README says: root compiles the package with the python3 Apache runs, since the web server
        # cannot write __pycache__ in a checkout that root owns.
        python = shutil.which("python3", path=APACHE_ENV["PATH"])
        subprocess.run([python, "-m", "compileall", "-q", str(self.site / "cimade_ovh")], env=APACHE_ENV, check=True)
        (self.site / ".venv3").symlink_to(venv, target_is_directory=True)
        self.lines_ini = write_lines_ini(self.site, self.fake, **({"web_user": WEB_USER} if os.geteuid() == 0 else {}))
        (self.folder / "run").mkdir()
        os.chmod(self.folder, 0o755)
        os.chmod(self.site / "index.py", 0o755)
        if os.geteuid() == 0:
            # The README's rights: root owns the code, the web server reads ovh.conf and writes data/.
            user, group = pwd.getpwnam(WEB_USER).pw_uid, grp.getgrnam(WEB_USER).gr_gid
            os.chown(self.site / "ovh.conf", 0, group)
            os.chmod(self.site / "ovh.conf", 0o640)
            for folder in (self.site / "data", self.site / "mailbox"):
                os.chown(folder, user, group)
                os.chmod(folder, 0o750)
        else:
            os.chmod(self.site / "ovh.conf", 0o600)

    def write_configuration(self):
        modules = "\n".join(f"LoadModule {name}_module {module_path(name)}" for name in self.modules)
        mime_types = Path("/etc/mime.types")
        if not mime_types.exists():
            mime_types = self.folder / "mime.types"
            mime_types.touch()
        values = {"folder": self.folder, "site": self.site, "port": self.port}
        self.configuration = self.folder / "apache2.conf"
        self.configuration.write_text(
            CONFIGURATION.format(
                **values,
                modules=modules,
                user=f"User {WEB_USER}\nGroup {WEB_USER}" if os.geteuid() == 0 else "",
                mime_types=mime_types,
                mode_settings="\n".join(MODE_SETTINGS[mode].format(**values) for mode in self.modes),
            ),
            encoding="utf-8",
        )

    # The server.

    def start(self):
        """Start Apache; on another free port if a program running meanwhile took this one first."""
        for _ in range(3):
            command = ["apache2", "-f", str(self.configuration), "-DFOREGROUND"]
            with open(self.folder / "error.log", "ab") as log:  # Also what it says before it opens its ErrorLog.
                self.process = subprocess.Popen(command, env=APACHE_ENV, cwd=self.folder, stderr=log)
            if self.listening():
                return
            if "Address already in use" not in self.error_log():
                break
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.write_configuration()
        log = self.error_log()
        self.stop()
        raise RuntimeError(f"Apache did not start on port {self.port}:\n{log}")

    def listening(self):
        """Wait until Apache listens on its port (True) or stops (False).

        Its PidFile is written once the port is bound: a connection before it could reach another program.
        """
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.process.poll() is None:
            if (self.folder / "apache2.pid").exists():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return True
                except OSError:
                    pass
            time.sleep(0.05)
        return False

    def stop(self):
        """Stop Apache (it stops its FastCGI processes) and remove the temporary folder."""
        self.http.close()
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in self.page_processes():  # None should be left; never leave one behind.
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)

    def forget_reads(self):
        """Make the page's processes forget the OVH reads they share, as an action does: for a test that changed OVH.

        Each group's stamp in data/last-action/ changes (as root, the files stay the web server's, as data/ is).
        """
        settings = load_settings(self.lines_ini)
        for group in settings.groups.values():
            change_stamp(settings, group)

    def error_log(self):
        path = self.folder / "error.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def page_processes(self):
        """The PIDs of the Python processes running this site's index.py (FastCGI keeps them alive)."""
        script = str(self.site / "index.py")
        found = subprocess.run(["pgrep", "-f", script], capture_output=True, text=True, check=False)
        return sorted(int(pid) for pid in found.stdout.split())

    def explain(self):
        return self.error_log()


def require(reason):
    """Skip a test for `reason`, except in CI (the environment variable CI is set), where it fails."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: these tests must run)", pytrace=False)
    pytest.skip(reason)
