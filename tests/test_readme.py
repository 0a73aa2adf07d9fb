"""The README's install and operations commands, taken from the README itself and run as printed where they can be.

/var/www/cimade-ovh, the README's folder, becomes a temporary folder; /root, a temporary home. Nothing touches
the machine's Apache, cron or logrotate: the files the README writes there are read and checked instead.
"""

import grp
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import apache
import pytest
from webpage import write_lines_ini

from cimade_ovh.config import load_settings
from cimade_ovh.figures import record_path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SITE = "/var/www/cimade-ovh"
WEB_USER = "www-data"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def section(title):
    """The text of the README's section `title`, up to the next heading of its level or above (code blocks skipped)."""
    lines = README.read_text(encoding="utf-8").splitlines(keepends=True)
    headings, fenced = [], False
    for number, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        found = None if fenced else re.match(r"(#+) (.*)", line)
        if found:
            headings.append((number, len(found[1]), found[2].strip()))
    start, level = next((n, lv) for n, lv, name in headings if name == title)
    end = next((n for n, lv, _ in headings if n > start and lv <= level), len(lines))
    return "".join(lines[start:end])


def shell_blocks(text):
    """The ```sh blocks of a README text, in order, without their indentation."""
    return [textwrap.dedent(m[1]) for m in re.finditer(r"^ *```sh\n(.*?)^ *```\n", text, re.S | re.M)]


def heredoc(target):
    """The lines the README writes to `target` with cat > target <<'FIN' … FIN."""
    for block in shell_blocks(README.read_text(encoding="utf-8")):
        found = re.search(rf"cat > {re.escape(target)} <<'FIN'\n(.*?)^FIN$", block, re.S | re.M)
        if found:
            return found[1].splitlines()
    raise AssertionError(f"the README writes no {target}")


def in_site(command, site, home):
    """A README command for the site in `site`, root's home being `home`."""
    return command.replace(SITE, str(site)).replace("/root/", f"{home}/")


# --- Debian's python3 --------------------------------------------------------------------------


def test_every_virtualenv_and_compilation_uses_debians_python3():
    """root's python3 may be a pyenv in /root, which the web server and cron cannot run."""
    for path in (README, ROOT / ".ci" / "run"):
        uses = re.findall(r"(\S+) -m (venv|compileall)\b", path.read_text(encoding="utf-8"))
        assert uses, path
        assert {python for python, _ in uses} == {"/usr/bin/python3"}, (path, uses)


# --- What cron, logrotate and mail need --------------------------------------------------------


def test_the_install_brings_cron_logrotate_and_a_mail_server():
    install = shell_blocks(section("1. Le code, le virtualenv et les droits"))[0].splitlines()[0]
    assert install.startswith("apt-get install ")
    assert {"cron", "logrotate", "postfix", "apache2", "libapache2-mod-fcgid", "python3-venv"} <= set(install.split())
    assert load_settings(ROOT / "lines.ini").sendmail[0] == "/usr/sbin/sendmail", "what postfix installs"


CRON_TIME = re.compile(r"(\*|\d+(-\d+)?(,\d+(-\d+)?)*)(/\d+)?")


def cron_jobs():
    """The README's /etc/cron.d/cimade-ovh: (its variables, its jobs as (user, command)), each line checked."""
    variables, jobs = {}, []
    for line in heredoc("/etc/cron.d/cimade-ovh"):
        if "=" in line.split()[0]:
            name, _, value = line.partition("=")
            variables[name] = value
            continue
        fields = line.split(None, 6)
        assert len(fields) == 7 and all(CRON_TIME.fullmatch(f) for f in fields[:5]), line
        assert "%" not in fields[6], "cron makes % a new line"
        jobs.append((fields[5], fields[6]))
    return variables, jobs


def test_the_cron_file_runs_stats_py_as_the_web_server_and_mails_it():
    variables, jobs = cron_jobs()
    assert re.fullmatch(r"\S+@\S+", variables["MAILTO"])
    assert [user for user, _ in jobs] == [WEB_USER] * len(jobs)
    assert f"{SITE}/.venv3/bin/python {SITE}/stats.py" in [command for _, command in jobs]
    for path in (".venv3/bin/python", "stats.py"):
        assert (ROOT / path).exists(), path


def test_the_cron_retention_line_deletes_the_records_older_than_a_year_and_nothing_else(fake_ovh):
    [retention] = [command for _, command in cron_jobs()[1] if command.startswith("find ")]
    home = Path(tempfile.mkdtemp(prefix="cimade-ovh-readme-"))
    try:
        home.chmod(0o755)
        site = home / "cimade-ovh"
        site.mkdir()
        settings = load_settings(write_lines_ini(site, fake_ovh))
        assert settings.data_dir == site / "data"
        as_cron = run_as_web_user()
        nothing = subprocess.run(["sh", "-c", in_site(retention, site, home)], capture_output=True, text=True,
                                 **as_cron)  # fmt: skip
        assert (nothing.returncode, nothing.stdout + nothing.stderr) == (0, ""), "before any record: silent"
        lyon = settings.groups["lyon"]
        today = date.today()
        old, recent = record_path(settings, lyon, today - timedelta(days=400)), record_path(settings, lyon, today)
        data = settings.data_dir
        others = [settings.activity_log, data / "shared" / "lyon.json", data / "ends" / "lyon.json"]
        for path in [old, recent, *others]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}\n", encoding="utf-8")
            stamp = time.time() - 400 * 86400 if path != recent else time.time()
            os.utime(path, (stamp, stamp))
        if as_cron:
            subprocess.run(["chown", "-R", f"{WEB_USER}:{WEB_USER}", str(settings.data_dir)], check=True)
        ran = subprocess.run(["sh", "-c", in_site(retention, site, home)], capture_output=True, text=True, **as_cron)
        assert (ran.returncode, ran.stdout + ran.stderr) == (0, ""), "cron mails any output"
        assert not old.exists() and recent.exists()
        assert all(path.exists() for path in others), "only the statistics' records go"
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_as_web_user():
    """subprocess.run's arguments that run a command as the web server's user, as cron does (root only)."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam(WEB_USER)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def test_the_logrotate_file_rotates_the_activity_log_the_page_writes():
    lines = heredoc("/etc/logrotate.d/cimade-ovh")
    settings = load_settings(ROOT / "lines.ini")
    logged = settings.activity_log.relative_to(ROOT)
    assert lines[0] == f"{SITE}/{logged} {{" and lines[-1] == "}"
    directives = [line.split() for line in lines[1:-1]]
    assert {d[0] for d in directives} <= {"monthly", "rotate", "compress", "missingok", "notifempty", "create"}
    assert ["create", "640", WEB_USER, WEB_USER] in directives, "the page's own mode and owner"


# --- Upgrading -------------------------------------------------------------------------------


def git(*args, cwd=None):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def former_version():
    """The last commit before the package cimade_ovh/ (one index.py): the farthest upgrade; HEAD in a shallow clone."""
    added = git("log", "--diff-filter=A", "--format=%H", "--", "cimade_ovh/__init__.py", cwd=ROOT).splitlines()
    if added and subprocess.run(["git", "cat-file", "-e", f"{added[-1]}^"], cwd=ROOT).returncode == 0:
        return git("rev-parse", f"{added[-1]}^", cwd=ROOT)
    return git("rev-parse", "HEAD", cwd=ROOT)


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_the_readme_upgrade_runs_as_printed_and_the_page_answers(fake_ovh):
    """A site installed at a former version, lines.ini changed by IT, upgraded by the README's commands to HEAD."""
    upgrade = shell_blocks(section("4. Mettre à jour la page"))
    assert len(upgrade) == 2, "the upgrade, and the way past a lines.ini git will not overwrite"
    home = Path(tempfile.mkdtemp(prefix="cimade-ovh-upgrade-"))
    try:
        home.chmod(0o755)
        head = git("rev-parse", "HEAD", cwd=ROOT)
        origin, site = home / "origin.git", home / "cimade-ovh"
        git("clone", "-q", "--bare", str(ROOT), str(origin))
        git("update-ref", "refs/heads/main", head, cwd=origin)
        git("symbolic-ref", "HEAD", "refs/heads/main", cwd=origin)
        git("clone", "-q", str(origin), str(site))
        git("reset", "-q", "--hard", former_version(), cwd=site)
        web = {"web_user": WEB_USER} if os.geteuid() == 0 else {}
        write_lines_ini(site, fake_ovh, **web)  # IT's groups, over the lines.ini of the repository.
        ours = (site / "lines.ini").read_text(encoding="utf-8")
        (site / ".venv3").symlink_to(apache.site_virtualenv())  # Built by the system's python3, as step 1 does.
        if os.geteuid() == 0:
            user = pwd.getpwnam(WEB_USER)
            os.chown(site / "ovh.conf", 0, user.pw_gid)
            os.chmod(site / "ovh.conf", 0o640)
            os.chown(site / "data", user.pw_uid, user.pw_gid)
            os.chmod(site / "data", 0o750)
        shims = home / "bin"
        shims.mkdir()
        (shims / "apache2ctl").write_text(f'#!/bin/sh\necho "$@" >> {home}/apache2ctl.log\n', encoding="utf-8")
        (shims / "apache2ctl").chmod(0o755)
        env = {"PATH": f"{shims}:{SYSTEM_PATH}", "HOME": str(home), "LANG": "C.UTF-8"}

        def run(script):
            return subprocess.run(["sh", "-ec", in_site(script, site, home)], cwd="/", env=env, capture_output=True,
                                  text=True, timeout=300)  # fmt: skip

        assert_page_answers(site)  # The former version served the page, and wrote its data/.
        ran = run(upgrade[0])
        if ran.returncode != 0:  # The new version changes lines.ini too: the README's second block, then the rest.
            assert "would be overwritten by merge" in ran.stderr and "lines.ini" in ran.stderr, ran.stderr
            rest = upgrade[0].split("git pull\n", 1)[1]
            ran = run(upgrade[1] + rest)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert git("rev-parse", "HEAD", cwd=site) == head
        assert (site / "lines.ini").read_text(encoding="utf-8") == ours, "IT's groups are kept"
        assert "ERREUR" not in ran.stdout and "Attention : le code compilé" not in ran.stdout, ran.stdout
        assert "ok     [lyon]" in ran.stdout and "ok     [lille]" in ran.stdout
        assert (home / "apache2ctl.log").read_text(encoding="utf-8") == "graceful\n"
        assert_page_answers(site)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def assert_page_answers(site):
    """Lille's page answers, as Apache's CGI asks for it."""
    page = cgi_page(site, "/lille")
    assert page.startswith("Status: 200 OK") and "Lille" in page, page


# --- Backing up, restoring, uninstalling ---------------------------------------------------------


def install_site(folder, fake_ovh):
    """The page installed in `folder` as the README's steps 1 and 3 leave it, its groups on the simulator."""
    folder.mkdir()
    for name in ("index.py", "requirements.txt", ".htaccess"):
        shutil.copy2(ROOT / name, folder / name)
    shutil.copytree(ROOT / "cimade_ovh", folder / "cimade_ovh", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / ".venv3").symlink_to(apache.site_virtualenv())  # Built by the system's python3, as step 1 does.
    subprocess.run(["/usr/bin/python3", "-m", "compileall", "-q", str(folder / "cimade_ovh")], check=True)
    write_lines_ini(folder, fake_ovh, web_user=WEB_USER)
    subprocess.run(["chown", "root:www-data", str(folder / "ovh.conf")], check=True)
    os.chmod(folder / "ovh.conf", 0o640)
    subprocess.run(["chown", "www-data:www-data", str(folder / "data")], check=True)
    os.chmod(folder / "data", 0o750)


def owner_and_mode(path):
    info = path.stat()
    return f"{pwd.getpwuid(info.st_uid).pw_name}:{grp.getgrgid(info.st_gid).gr_name} {oct(info.st_mode & 0o777)}"


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="root gives owners back")
def test_a_backup_restored_on_a_new_install_serves_the_same_groups_behind_the_same_codes(fake_ovh):
    save, restore = shell_blocks(section("6. Sauvegarder et restaurer"))
    home = Path(tempfile.mkdtemp(prefix="cimade-ovh-backup-"))
    try:
        home.chmod(0o755)
        old, new = home / "ancien", home / "nouveau"
        install_site(old, fake_ovh)
        code = subprocess.run(
            [str(old / ".venv3" / "bin" / "python"), str(old / "index.py"), "--set-code", "lyon"],
            input="un code assez long\n", capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert "code d'accès enregistré" in code.stdout
        assert_page_answers(old)  # The page wrote its data/: the cookies' key, the groups with a code.
        env = {"PATH": SYSTEM_PATH, "HOME": str(home), "LANG": "C.UTF-8"}
        saved = subprocess.run(["sh", "-ec", in_site(save, old, home)], cwd="/", env=env, capture_output=True,
                               text=True, timeout=60)  # fmt: skip
        assert saved.returncode == 0, saved.stderr
        [archive] = home.glob("cimade-ovh-*.tar.gz")
        assert owner_and_mode(archive) == "root:root 0o600"
        install_site(new, fake_ovh)
        for name in ("ovh.conf", "lines.ini"):
            (new / name).unlink()  # A new install: only the code, .venv3 and an empty data/.
        shutil.rmtree(new / "data")
        (new / "data").mkdir()
        subprocess.run(["chown", "www-data:www-data", str(new / "data")], check=True)
        restore = restore.replace("AAAA-MM-JJ", archive.name.removeprefix("cimade-ovh-").removesuffix(".tar.gz"))
        restored = subprocess.run(["sh", "-ec", in_site(restore, new, home)], cwd="/", env=env, capture_output=True,
                                  text=True, timeout=120)  # fmt: skip
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "ERREUR" not in restored.stdout and "ok     [lyon]" in restored.stdout, restored.stdout
        kept = ("ovh.conf", "access-codes.ini", "lines.ini", "data", "data/secret.key", "data/access-codes.groups")
        for name in kept:
            assert owner_and_mode(new / name) == owner_and_mode(old / name), name
        assert (new / "data" / "secret.key").read_bytes() == (old / "data" / "secret.key").read_bytes()
        lyon = cgi_page(new, "/lyon")
        assert lyon.startswith("Status: 403") and 'name="code"' in lyon, "the code came back with the rest"
    finally:
        shutil.rmtree(home, ignore_errors=True)


def cgi_page(site, path):
    """The page at `path`, as Apache's CGI runs index.py: as the web server, by its #! line."""
    page = subprocess.run(
        [str(site / "index.py")], cwd="/", capture_output=True, text=True, timeout=60, **run_as_web_user(),
        env={"PATH": SYSTEM_PATH, "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "PATH_INFO": path,
             "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1"},
    )  # fmt: skip
    return page.stdout + page.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/bin/python3").exists(), reason="root gives owners back")
def test_after_a_new_debian_python_the_readme_commands_bring_the_page_back(fake_ovh):
    """.venv3 made by a Python Debian removed: the page fails, until the README's commands, run as printed."""
    [commands] = shell_blocks(section("5. Nouvelle version de Python"))
    home = Path(tempfile.mkdtemp(prefix="cimade-ovh-python-"))
    try:
        home.chmod(0o755)
        site = home / "cimade-ovh"
        install_site(site, fake_ovh)
        (site / ".venv3").unlink()
        (site / ".venv3" / "bin").mkdir(parents=True)
        (site / ".venv3" / "bin" / "python").symlink_to("/usr/bin/python3.99")  # Gone with the former Debian.
        broken = cgi_page(site, "/lille")  # What the page says, and logs, while .venv3 has no packages for it.
        assert "La page ne trouve pas ses bibliothèques Python (.venv3)" in broken, broken
        assert "il faut recréer .venv3 (README, « Nouvelle version de Python »)" in broken
        assert "ERROR: reading lille failed: modules: No module named 'ovh'" in broken and "Traceback" not in broken
        shims = home / "bin"
        shims.mkdir()
        (shims / "apache2ctl").write_text(f'#!/bin/sh\necho "$@" >> {home}/apache2ctl.log\n', encoding="utf-8")
        (shims / "apache2ctl").chmod(0o755)
        env = {"PATH": f"{shims}:{SYSTEM_PATH}", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
        ran = subprocess.run(["sh", "-ec", in_site(commands, site, home)], cwd="/", env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "ERREUR" not in ran.stdout and "ok     [lyon]" in ran.stdout and "ok     [lille]" in ran.stdout
        assert (site / ".venv3" / "bin" / "python").resolve() == Path("/usr/bin/python3").resolve()
        assert (home / "apache2ctl.log").read_text(encoding="utf-8") == "graceful\n"
        assert_page_answers(site)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_uninstalling_removes_every_file_the_readme_writes_outside_the_site():
    uninstall = "\n".join(shell_blocks(section("7. Désinstaller")))
    written = set(re.findall(r"cat > (/etc/\S+) <<'FIN'", README.read_text(encoding="utf-8")))
    assert written == {"/etc/apache2/sites-available/cimade-ovh.conf", "/etc/cron.d/cimade-ovh",
                       "/etc/logrotate.d/cimade-ovh"}  # fmt: skip
    removed = set(re.search(r"^rm -f (.*)$", uninstall, re.M)[1].split())
    assert written <= removed
    assert "a2dissite cimade-ovh " in uninstall and f"rm -rf {SITE}\n" in uninstall + "\n"
    assert re.search(r"a2ensite cimade-ovh && a2dissite 000-default", README.read_text(encoding="utf-8"))
