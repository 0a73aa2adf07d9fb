"""The permanence page served over HTTP on the OVH simulator, for tests."""

import configparser
import email
import email.policy
import html
import os
import pwd
import re
import threading
from datetime import datetime
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from zoneinfo import ZoneInfo

import requests

import index
from cimade_ovh.phones import mask_phone
from cimade_ovh.traces import BEGUN

ROOT = Path(__file__).resolve().parent.parent
PARIS = ZoneInfo("Europe/Paris")
THURSDAY_AFTERNOON = datetime(2026, 11, 26, 16, 28, tzinfo=PARIS)
VOLUNTEER, OTHER_VOLUNTEER = "0033639980001", "0033639980002"  # Numbers the tests type (fictional range).


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def write_lines_ini(folder, fake, groups=None, **settings):
    """Copy the project's lines.ini into `folder`, with its ovh.conf, data folder and a test mailbox.

    `groups` changes keys of group sections: {"lyon": {"max_volunteers": "1"}}.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "lines.ini", encoding="utf-8")
    mailbox = folder / "mailbox"
    mailbox.mkdir(exist_ok=True)
    parser["settings"].update(
        {
            "ovh_conf": "ovh.conf",
            "data_dir": "data",
            "activity_log": "data/activity.log",
            "notify": "it@example.org",
            "sendmail": f"sh -c 'cat > \"$0/mail-$$.eml\"' {mailbox}",
            "web_user": pwd.getpwuid(os.geteuid()).pw_name,  # Whom index.py --check checks the rights for.
        }
    )
    (folder / "data").mkdir(exist_ok=True)
    parser["settings"].update(settings)
    for section, values in (groups or {}).items():
        parser[section].update(values)
    conf = folder / "ovh.conf"
    before = conf.stat() if conf.exists() else None
    fake.write_ovh_conf(conf)
    if before:  # Written again (a test changing its site): the owner and mode the site gave it stay.
        os.chown(conf, before.st_uid, before.st_gid)
        os.chmod(conf, before.st_mode & 0o777)
    path = folder / "lines.ini"
    with open(path, "w", encoding="utf-8") as file:
        parser.write(file)
    return path


class Browser:
    """HTTP helpers that act as a browser does: cookies kept, forms posted with their token.

    A subclass sets `url`, `http` (a requests.Session), `token` ("") and `lines_ini`, and may
    override `explain()` to add what helps understand a failure.
    """

    def get(self, path, **kwargs):
        response = self.http.get(self.url + path, allow_redirects=False, timeout=30, **kwargs)
        self.remember_token(response)
        return response

    def post(self, path, data=None, token=True, **kwargs):
        """POST a form as a browser would: with the form token of the pages (first fetched if need be)."""
        if token:
            data = dict(data or {})
            if not self.token:
                self.get("/" + path.strip("/").split("/")[0])
            data.setdefault("csrf", self.token)
        response = self.http.post(self.url + path, data=data, allow_redirects=False, timeout=30, **kwargs)
        self.remember_token(response)
        return response

    def remember_token(self, response):
        """Keep the form token a page carries, as a browser keeps the page's forms."""
        found = re.search(r'name="csrf" value="([^"]+)"', response.text)
        if found:
            self.token = found[1]

    def act(self, path, data=None):
        """POST an action, check it redirects to the group page with its flash cookie, and return that page."""
        response = self.post(path, data)
        assert response.status_code == 303, f"{response.status_code} {response.text}\n{self.explain()}"
        location = response.headers["Location"]
        assert location == path.rsplit("/", 1)[0]
        assert "flash=" in response.headers["Set-Cookie"]
        page = self.get(location)
        assert page.status_code == 200, self.explain()
        return page

    def remove_form(self, group, number):
        """The fields of the "Retirer" button next to `number` (0033…) on the group's page, as a browser posts them."""
        page = self.get(f"/{group}")
        label = f'aria-label="Retirer le {mask_phone(number)}"'
        form = next(f for f in page.text.split("<form")[1:] if label in f.split("</form>")[0])
        return {"volunteer": re.search(r'<input type="hidden" name="volunteer" value="([^"]*)">', form)[1]}

    def explain(self):
        return ""

    def activity(self, begun=False):
        """The activity log of the site (next to its lines.ini), a list of fields per line.

        Without `begun`, the lines that say an action begins (result BEGUN) are left out: what was done.
        """
        path = self.lines_ini.parent / "data" / "activity.log"
        if not path.exists():
            return []
        lines = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()]
        return [fields for fields in lines if begun or fields[5:] != [BEGUN]]

    def mails(self):
        """The mails the site sent to IT, oldest first."""
        files = sorted((self.lines_ini.parent / "mailbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
        return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


class Site(Browser):
    """A running page: HTTP helpers, the moment it believes it is, its log and mails."""

    def __init__(self, folder, fake, moment=THURSDAY_AFTERNOON, groups=None, share_seconds=0):
        """`share_seconds` is 0 by default: tests change OVH behind the page's back and expect to see it."""
        self.folder = folder
        self.fake = fake
        self.moment = moment
        self.lines_ini = write_lines_ini(folder, fake, groups)
        self.app = index.App(lines_ini=self.lines_ini, share_seconds=share_seconds)
        self.server = make_server("127.0.0.1", 0, self.app, server_class=ThreadingServer, handler_class=QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.http = requests.Session()
        self.token = ""
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.http.close()

    def configure(self, section, **values):
        """Change keys of one section of the site's lines.ini; the page rereads it at the next request."""
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(self.lines_ini, encoding="utf-8")
        parser[section].update(values)
        with open(self.lines_ini, "w", encoding="utf-8") as file:
            parser.write(file)

    def now(self, zone):
        return self.moment.astimezone(zone)

    def writes(self):
        """The OVH requests that changed something."""
        return [r for r in self.fake.requests if r["method"] != "GET"]


def today_at_noon():
    """Noon today in Paris: inside the period the page opens today (02:00–23:59:59), whatever the real hour."""
    return datetime.now(PARIS).replace(hour=12, minute=0, second=0, microsecond=0)


def text(response):
    """The visible text of a page: tags removed (inline span and bdi without a space), entities decoded, spaces
    collapsed."""
    inline = re.sub(r"</?(?:span|bdi)[^>]*>", "", response.text)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inline)).split())


def told(page):
    """What a page's « Si quelqu'un appelle maintenant, … » says, in the simulator's who_rings terms.

    (masked numbers in the order they ring, "ensemble" | "d'abord" | "", where the call goes instead or None).
    """
    sentence = re.search(r"Si quelqu'un appelle maintenant, (.*?\.)(?= |$)", page)[1]
    numbers = re.findall(r"\d\d(?: ••){3} \d\d", sentence)
    if "messagerie de la ligne" in sentence:
        return [], "", "voicemail"
    if "message de fermeture" in sentence:
        return [], "", ""
    if "renvoyé vers" in sentence:
        return [], "", numbers[0]
    how = "ensemble" if "ensemble" in sentence else "d'abord" if "d'abord" in sentence else ""
    return numbers, how, None


def as_told(ringing):
    """The simulator's who_rings answer, as told() reads a page."""
    if ringing.elsewhere is not None:
        elsewhere = ringing.elsewhere
        return [], "", mask_phone(elsewhere) if elsewhere.startswith("00") else elsewhere
    how = ""
    if len(ringing) > 1:
        how = "ensemble" if ringing.together else "d'abord" if ringing.strategy == "sequentiallyByAgentOrder" else ""
    return [mask_phone(n) for n in ringing], how, None
