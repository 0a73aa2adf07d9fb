"""The web server's user: who it is, what it may read and write, and the commands that fix it."""

import contextlib
import os
import stat
import sys
from pathlib import Path

from . import ROOT

# How the README builds .venv3: with Debian's python3, which every user may run (never a pyenv or /usr/local one).
VENV_COMMAND = "/usr/bin/python3 -m venv .venv3 && .venv3/bin/pip install -r requirements.txt"


def web_user(settings):
    """The web server's user (a pwd entry, or None): web_user of lines.ini, else data_dir's owner, else www-data."""
    import pwd

    names = [settings.web_user] if settings.web_user else []
    with contextlib.suppress(OSError, KeyError):
        owner = settings.data_dir.stat().st_uid
        if owner != 0:
            names.append(pwd.getpwuid(owner).pw_name)
    for name in names + ["www-data"]:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    return None


def permitted(user, path, bits):
    """Whether `user` may read (4), write (2) or enter (1) `path`, by the modes of the file and its folders."""
    if user.pw_uid == 0:
        return True
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))

    def allows(info, wanted):
        shift = {"u": 6, "g": 3, "o": 0}[whose(user, groups, info)]
        return (info.st_mode >> shift) & wanted == wanted

    try:
        return all(allows(folder.stat(), 1) for folder in path.parents) and allows(path.stat(), bits)
    except OSError:  # Not even this command may look: the web server surely cannot either.
        return False


def page_can_read(settings, path):
    """Whether the web server's user may read `path` (True when it is unknown: nothing to say then)."""
    user = web_user(settings)
    return user is None or permitted(user, Path(path), 4)


def exposed_secrets(settings):
    """The secrets every local user may read (ovh.conf, access-codes.ini), each in a French sentence with its fix."""
    found = []
    for path in (Path(settings.ovh_conf), settings.access_codes):
        with contextlib.suppress(OSError):
            mode = path.stat().st_mode
            if mode & 0o007:
                found.append(
                    f"{path} est lisible par tous les utilisateurs de ce serveur ({stat.filemode(mode)[1:]}) : "
                    f"chmod o-rwx {path}"
                )
    return found


def whose(user, groups, info):
    """Which of a file's modes (chmod's u, g or o) applies to `user`, a member of `groups`."""
    if info.st_uid == user.pw_uid:
        return "u"
    return "g" if info.st_gid in groups else "o"


def closed_folder(user, path):
    """The first existing folder on the way to `path` that `user` may not enter, or None."""
    return next((f for f in reversed(path.parents) if f.is_dir() and not permitted(user, f, 1)), None)


def entry_fix(user, folder):
    """The command that lets `user` enter `folder`, and no more."""
    try:
        return f"chmod {whose(user, set(os.getgrouplist(user.pw_name, user.pw_gid)), folder.stat())}+x {folder}"
    except OSError:
        return f"chmod o+x {folder}"


def web_user_problems(settings):
    """What the web server's user cannot read or write among the page's files, in French, with the fix."""
    user = web_user(settings)
    if user is None:
        return []
    name, group = user.pw_name, group_name(user.pw_gid)
    data = settings.data_dir
    files = [path for path in (settings.path, Path(settings.ovh_conf), settings.access_codes) if path.exists()]
    closed = sorted({folder for folder in (closed_folder(user, path) for path in [*files, data]) if folder})
    problems = [
        f"le serveur web ({name}) ne peut pas entrer dans le dossier {folder} : {entry_fix(user, folder)}"
        for folder in closed
    ]
    for path in files:
        if not closed_folder(user, path) and not permitted(user, path, 4):
            problems.append(
                f"le serveur web ({name}) ne peut pas lire {path} : chown root:{group} {path} && chmod 640 {path}"
            )
    if closed_folder(user, data):
        return problems
    if not data.is_dir():
        return problems + [f"le dossier {data} n'existe pas : install -d -o {name} -g {group} -m 750 {data}"]
    paths = [data, *sorted(data.rglob("*"))]
    stuck = [p for p in paths if not permitted(user, p, 7 if p.is_dir() else 6)]
    if stuck:
        problems.append(
            f"le serveur web ({name}) ne peut pas écrire dans {data} ({stuck[0]}"
            + (f" et {len(stuck) - 1} autre(s)" if len(stuck) > 1 else "")
            + f") : chown -R {name}:{group} {data}"
        )
    return problems


def share_with_web_server(path, settings):
    """Give a file that a command run as root has just created to the web server's group, mode 640."""
    user = web_user(settings)
    if os.geteuid() == 0 and user is not None and user.pw_uid != 0:
        os.chown(path, 0, user.pw_gid)
        os.chmod(path, 0o640)


def become_web_user(settings):
    """When started as root, go on as the web server's user, so that what we write in data_dir stays the page's.

    Return that user's name, or None when nothing changed.
    """
    user = web_user(settings)
    if os.geteuid() != 0 or user is None or user.pw_uid == 0:
        return None
    os.setgroups(os.getgrouplist(user.pw_name, user.pw_gid))
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    library = os.path.dirname(os.__file__)
    if not os.access(library, os.R_OK | os.X_OK):  # A python3 of root's own (a pyenv in /root): imports would fail.
        fix = (
            f"recréez .venv3 avec le python3 de Debian, en root : cd {ROOT} && rm -rf .venv3 && {VENV_COMMAND}"
            if sys.prefix != sys.base_prefix
            else "relancez-la avec le python3 de Debian : /usr/bin/python3 " + " ".join(sys.argv)
        )
        raise SystemExit(
            f"ERREUR : {user.pw_name}, l'utilisateur du serveur web, ne peut pas lire le Python qui lance cette "
            f"commande ({library}) : {fix}"
        )
    return user.pw_name


def group_name(gid):
    """The name of a group id (the id itself when it has none)."""
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)
