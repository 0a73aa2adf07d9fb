"""stats.py: one record per queue group and run, housekeeping of forgotten periods, the report and the page."""

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from webpage import PARIS, THURSDAY_AFTERNOON, text

import stats
from cimade_ovh import config
from cimade_ovh.config import load_settings
from cimade_ovh.figures import append_record, daily_figures, read_records, record_path
from cimade_ovh.files import group_lock
from cimade_ovh.simulator import DEMO_BILLING_ACCOUNT, LYON_NUMBER, statistics_history

ROOT = Path(__file__).resolve().parent.parent


def records(site, day="2026-11-26"):
    path = site.folder / "data" / "stats" / "lyon" / f"{day}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_stats(site, monkeypatch, *argv):
    monkeypatch.setattr(config, "LINES_INI", site.lines_ini)
    return stats.main(argv)


def test_each_run_appends_one_record_per_queue_group(site, monkeypatch, capsys):
    site.act("/lyon/start", {"number": "0639980001"})
    site.fake.add_live_call(LYON_NUMBER, state="Answered", agent="0033639980001")
    assert run_stats(site, monkeypatch) == 0
    site.fake.add_statistics(LYON_NUMBER, answered=2, lost=1)
    assert run_stats(site, monkeypatch) == 0
    first, second = records(site)
    assert first["time"] == "2026-11-26T16:28:00+01:00"
    assert first["calls"][0]["agent"] == "0033639980001"
    assert "callerIdNumber" not in first["calls"][0] and "0033639989999" not in json.dumps(first), "no caller kept"
    assert second["statistics"]["callsAnswered"] == first["statistics"]["callsAnswered"] + 2
    assert second["statistics"]["callsLost"] == first["statistics"]["callsLost"] + 1
    assert not (site.folder / "data" / "stats" / "lille").exists()
    assert capsys.readouterr() == ("", "")


def test_ovh_unreachable_is_one_sentence_for_all_the_groups(site, monkeypatch, capsys):
    site.act("/lille/start", {"number": "0639980001", "ends": "17:00"})
    site.moment = THURSDAY_AFTERNOON.replace(hour=17, minute=5)  # Lille's end is due: both groups ask OVH.
    site.fake.fail("GET", "/telephony/*", kind="drop", times=100)  # OVH's clock answers, then nothing more.
    assert run_stats(site, monkeypatch) == 1
    assert capsys.readouterr().err.splitlines() == [
        "stats.py : Impossible de joindre OVH depuis ce serveur (ConnectionError) : vérifiez sa connexion à Internet "
        "et l'endpoint de ovh.conf (pour le simulateur : qu'il tourne), puis relancez."
    ]


@pytest.mark.parametrize(
    "change, said",
    [
        ({"number": "0033465719000"}, "[lille] ce numéro est une file d'appels chez OVH : kind = queue ?"),
        ({"number": "0033353019999"}, "[lille] OVH ne connaît pas le numéro 03 53 01 99 99 dans le compte de "
                                      f"facturation {DEMO_BILLING_ACCOUNT}"),
        ({"billing_account": "ab12345-ovh-9"}, "[lille] OVH ne connaît pas le compte de facturation « ab12345-ovh-9 »"),
    ],
)  # fmt: skip
def test_a_redirect_group_that_lines_ini_gets_wrong_is_named(site, monkeypatch, capsys, change, said):
    site.fake.add_queue("0033465719000")
    site.configure("lille", **change)
    assert run_stats(site, monkeypatch) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"stats.py : {said}"), line


def test_a_failing_group_does_not_stop_the_others(site, monkeypatch, capsys):
    with open(site.lines_ini, "a", encoding="utf-8") as file:
        file.write("\n[grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\n")
        file.write("number = 0033465719999\n")
    assert run_stats(site, monkeypatch) == 1
    assert len(records(site)) == 1
    assert capsys.readouterr().err.splitlines() == [
        "stats.py : [grenoble] OVH ne connaît pas le numéro 04 65 71 99 99 dans le compte de facturation "
        f"{DEMO_BILLING_ACCOUNT} : vérifiez number (et billing_account) dans lines.ini, puis relancez /usr/bin/python3 "
        f"{ROOT / 'index.py'} --check."
    ]


def test_a_record_that_cannot_be_written_is_one_french_sentence(site, monkeypatch, capsys):
    stats_folder = site.folder / "data" / "stats"
    stats_folder.write_text("", encoding="utf-8")  # A file where the records' folder goes.
    assert run_stats(site, monkeypatch) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"stats.py : {stats_folder / 'lyon'} : un élément du chemin n'est pas un dossier ; vérifiez ce chemin "
        f"et les droits des fichiers : /usr/bin/python3 {ROOT / 'index.py'} --check"
    ]


def test_a_period_forgotten_on_an_earlier_day_is_removed(site, monkeypatch):
    site.moment = THURSDAY_AFTERNOON - timedelta(days=1)
    site.act("/lyon/start", {"number": "0639980001"})
    site.moment = THURSDAY_AFTERNOON
    assert run_stats(site, monkeypatch) == 0
    wednesday_next_week = THURSDAY_AFTERNOON + timedelta(days=6)
    assert site.fake.who_rings(LYON_NUMBER, at=wednesday_next_week) == []
    assert [line[2:6] for line in site.activity()[-2:]] == [
        ["housekeeping", "-", "stats.py", "période du wednesday supprimée"],
        ["housekeeping", "0033639980001", "stats.py", "agent déconnecté"],
    ]
    site.configure("lyon", max_volunteers="2")
    site.act("/lyon/start", {"number": "0639980002"})
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == ["0033639980002"]


def test_housekeeping_waits_for_an_action_in_progress(site, monkeypatch):
    site.moment = THURSDAY_AFTERNOON - timedelta(days=1)
    site.act("/lyon/start", {"number": "0639980001"})
    site.moment = THURSDAY_AFTERNOON
    settings = site.app.settings()
    with group_lock(settings, settings.groups["lyon"]) as held:
        assert held is not None
        assert run_stats(site, monkeypatch) == 0
    wednesday_next_week = THURSDAY_AFTERNOON + timedelta(days=6)
    assert site.fake.who_rings(LYON_NUMBER, at=wednesday_next_week) == ["0033639980001"], "left for the next run"
    assert run_stats(site, monkeypatch) == 0
    assert site.fake.who_rings(LYON_NUMBER, at=wednesday_next_week) == []


def test_todays_period_is_kept(site, monkeypatch):
    site.act("/lyon/start", {"number": "0639980001"})
    assert run_stats(site, monkeypatch) == 0
    assert site.fake.who_rings(LYON_NUMBER, at=THURSDAY_AFTERNOON) == ["0033639980001"]


def test_cron_run_from_another_directory_prints_nothing(site):
    result = subprocess.run(
        [sys.executable, str(ROOT / "stats.py")],
        env={**os.environ, "LINES_INI": str(site.lines_ini)},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert list((site.folder / "data" / "stats" / "lyon").glob("*.jsonl"))


def test_two_runs_at_once_write_whole_lines(site, monkeypatch):
    monkeypatch.setenv("LINES_INI", str(site.lines_ini))
    runs = [subprocess.Popen([sys.executable, str(ROOT / "stats.py")], env=dict(os.environ), cwd="/") for _ in range(4)]
    assert [run.wait(60) for run in runs] == [0, 0, 0, 0]
    lines = [
        json.loads(line)
        for path in (site.folder / "data" / "stats" / "lyon").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    assert len(lines) == 4


# --- Daily figures and the report ----------------------------------------------

LIVE_STATISTICS = f"/telephony/{DEMO_BILLING_ACCOUNT}/easyHunting/{LYON_NUMBER}/hunting/queue/5001/liveStatistics"
MONDAY, TUESDAY, WEDNESDAY, THURSDAY = (date(2026, 11, day) for day in (23, 24, 25, 26))


def at(day, hour):
    """A moment of November 2026 in Paris."""
    return datetime(2026, 11, day, hour, tzinfo=PARIS)


def run_at(site, monkeypatch, moment):
    site.moment = moment
    assert run_stats(site, monkeypatch) == 0


def figures(site, first_day=MONDAY, last_day=THURSDAY):
    """Lyon's figures from its records, by day."""
    settings = load_settings(site.lines_ini)
    records = read_records(settings, settings.groups["lyon"], first_day, last_day)
    return {f.day: f for f in daily_figures(records, first_day, last_day)}


def numbers(figure):
    return (figure.records, figure.calls, figure.answered, figure.lost, figure.waiting_seconds, figure.talk_seconds)


def play_a_week(site, monkeypatch):
    """Lyon from Monday to Thursday: calls, no record on Tuesday, OVH's counters reset on Wednesday."""
    run_at(site, monkeypatch, at(23, 9))  # The first record of all: OVH's counters date from 2024, it counts nothing.
    site.fake.add_statistics(LYON_NUMBER, answered=2, lost=1, waiting_seconds=90, talk_seconds=600)
    run_at(site, monkeypatch, at(23, 12))
    site.fake.add_statistics(LYON_NUMBER, answered=1, waiting_seconds=20, talk_seconds=300)  # On Tuesday, unrecorded.
    run_at(site, monkeypatch, at(25, 10))
    site.fake.add_statistics(LYON_NUMBER, lost=2, waiting_seconds=200)  # Never recorded: OVH resets first.
    site.fake.reset_statistics(LYON_NUMBER, at=at(25, 15))
    site.fake.add_statistics(LYON_NUMBER, answered=3, waiting_seconds=60, talk_seconds=900)
    run_at(site, monkeypatch, at(25, 18))
    site.fake.add_statistics(LYON_NUMBER, answered=1, talk_seconds=3700)
    site.fake.add_live_call(LYON_NUMBER, state="Answered", agent="0033639980012")
    site.fake.add_live_call(LYON_NUMBER)  # Waiting: nobody answered it.
    run_at(site, monkeypatch, THURSDAY_AFTERNOON)


def test_figures_per_day_across_a_missing_day_and_a_counter_reset(site, monkeypatch):
    play_a_week(site, monkeypatch)
    week = figures(site)
    assert numbers(week[MONDAY]) == (2, 3, 2, 1, 90, 600)
    assert numbers(week[TUESDAY]) == (0, 0, 0, 0, 0, 0)
    # Tuesday's call counts on Wednesday, then what OVH counted since its reset.
    assert numbers(week[WEDNESDAY]) == (2, 4, 4, 0, 80, 1200)
    assert numbers(week[THURSDAY]) == (1, 1, 1, 0, 0, 3700)
    assert [week[day].agents for day in (MONDAY, WEDNESDAY, THURSDAY)] == [[], [], ["0033639980012"]]


def test_a_day_starts_from_the_last_record_before_it(site, monkeypatch):
    play_a_week(site, monkeypatch)
    assert numbers(figures(site, WEDNESDAY, WEDNESDAY)[WEDNESDAY]) == (2, 4, 4, 0, 80, 1200)


def test_the_first_record_counts_only_when_ovh_reset_the_counters_that_day(site, monkeypatch):
    site.fake.reset_statistics(LYON_NUMBER, at=at(26, 8))
    site.fake.add_statistics(LYON_NUMBER, answered=4, lost=1, waiting_seconds=100, talk_seconds=1000)
    run_at(site, monkeypatch, THURSDAY_AFTERNOON)
    assert numbers(figures(site)[THURSDAY]) == (1, 5, 4, 1, 100, 1000)


def test_who_answered_comes_from_the_calls_seen_and_an_ended_call_counts_once(site, monkeypatch):
    first = site.fake.add_live_call(LYON_NUMBER, state="Answered", agent="0033639980011")
    second = site.fake.add_live_call(LYON_NUMBER)
    run_at(site, monkeypatch, at(26, 10))
    site.fake.answer_live_call(LYON_NUMBER, second, "0033639980012")
    run_at(site, monkeypatch, at(26, 11))
    site.fake.end_live_call(LYON_NUMBER, first)
    site.fake.end_live_call(LYON_NUMBER, second)
    run_at(site, monkeypatch, at(26, 12))
    run_at(site, monkeypatch, at(26, 13))
    thursday = figures(site)[THURSDAY]
    assert (thursday.records, thursday.calls, thursday.answered, thursday.lost) == (4, 2, 2, 0)
    assert thursday.agents == ["0033639980011", "0033639980012"]


def test_a_failed_run_leaves_a_gap_that_the_next_run_covers(site, monkeypatch, capsys):
    run_at(site, monkeypatch, at(26, 9))
    site.fake.add_statistics(LYON_NUMBER, answered=2)
    site.fake.fail("GET", LIVE_STATISTICS, kind="503")
    site.moment = at(26, 10)
    assert run_stats(site, monkeypatch) == 1
    assert "stats.py : [lyon] OVH a rencontré une erreur de son côté (" in capsys.readouterr().err
    site.fake.add_statistics(LYON_NUMBER, lost=1)
    run_at(site, monkeypatch, at(26, 11))
    assert [record["time"][11:16] for record in records(site)] == ["09:00", "11:00"]
    assert numbers(figures(site)[THURSDAY]) == (2, 3, 2, 1, 0, 0)


def test_two_runs_at_once_count_the_calls_once(site, monkeypatch):
    monkeypatch.setenv("LINES_INI", str(site.lines_ini))
    command = [sys.executable, str(ROOT / "stats.py")]
    assert subprocess.run(command, cwd="/", timeout=60).returncode == 0
    site.fake.add_statistics(LYON_NUMBER, answered=2, lost=1)
    runs = [subprocess.Popen(command, cwd="/") for _ in range(2)]
    assert [run.wait(60) for run in runs] == [0, 0]
    paths = sorted((site.folder / "data" / "stats" / "lyon").glob("*.jsonl"))  # The real clock: maybe 2 days.
    lines = [line for path in paths for line in path.read_text(encoding="utf-8").splitlines()]
    assert [json.loads(line)["statistics"]["callsAnswered"] for line in lines] == [12, 14, 14]
    recorded = figures(site, date.fromisoformat(paths[0].stem), date.fromisoformat(paths[-1].stem)).values()
    assert sum(f.records for f in recorded) == 3
    assert (sum(f.answered for f in recorded), sum(f.lost for f in recorded)) == (2, 1)


def test_a_line_cut_short_is_skipped(site, monkeypatch):
    run_at(site, monkeypatch, at(26, 9))
    site.fake.add_statistics(LYON_NUMBER, answered=1)
    run_at(site, monkeypatch, at(26, 10))
    path = site.folder / "data" / "stats" / "lyon" / "2026-11-26.jsonl"
    with open(path, "a", encoding="utf-8") as file:
        file.write('{"calls": [], "statistics": {"callsAnswered": 1')
    site.fake.add_statistics(LYON_NUMBER, answered=1)
    run_at(site, monkeypatch, at(26, 11))
    assert numbers(figures(site)[THURSDAY])[:3] == (3, 2, 2)


def test_a_line_in_another_encoding_is_skipped_on_the_page_and_in_the_report(site, monkeypatch, capsys):
    run_at(site, monkeypatch, at(26, 9))
    path = site.folder / "data" / "stats" / "lyon" / "2026-11-26.jsonl"
    with open(path, "ab") as file:
        file.write('{"time": "2026-11-26T09:30:00+01:00", "note": "réunion"}\n'.encode("latin-1"))
    site.fake.add_statistics(LYON_NUMBER, answered=1)
    run_at(site, monkeypatch, at(26, 10))
    assert numbers(figures(site)[THURSDAY])[:3] == (2, 1, 1)
    page = site.get("/lyon/stats")
    assert page.status_code == 200 and "En tout : 1 appel, dont 1 répondu" in text(page)
    capsys.readouterr()
    assert run_stats(site, monkeypatch, "report", "--days", "1") == 0
    out, err = capsys.readouterr()
    assert "jeu. 26/11/2026  lyon" in out
    assert err == f"stats.py : {path}, ligne 2 illisible : sautée.\n", "said in French, once"


REPORT_HEADER = "jour             groupe  appels  répondus  perdus  attente  conversation  qui a répondu"


def test_report_prints_each_day_of_each_queue_group(site, monkeypatch, capsys):
    play_a_week(site, monkeypatch)
    capsys.readouterr()
    requests = len(site.fake.requests)
    assert run_stats(site, monkeypatch, "report", "--days", "4") == 0
    assert capsys.readouterr().out.splitlines() == [
        REPORT_HEADER,
        "lun. 23/11/2026  lyon         3         2       1    2 min        10 min  -",
        "mar. 24/11/2026  lyon    pas de relevé",
        "mer. 25/11/2026  lyon         4         4       0    1 min        20 min  -",
        "jeu. 26/11/2026  lyon         1         1       0      0 s        1 h 02  06 39 98 00 12",
    ]
    assert len(site.fake.requests) == requests  # Files only: no OVH request.


def test_report_defaults_to_seven_days_of_every_queue_group(site, monkeypatch, capsys):
    with open(site.lines_ini, "a", encoding="utf-8") as file:
        file.write("\n[grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\n")
        file.write("number = 0033465719999\n")
    assert run_stats(site, monkeypatch) == 1  # Grenoble fails: OVH does not know its number.
    capsys.readouterr()
    assert run_stats(site, monkeypatch, "report") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 7 * 2
    assert lines[1] == "ven. 20/11/2026  lyon      pas de relevé"
    assert lines[7:9] == [
        "jeu. 26/11/2026  lyon           0         0       0      0 s           0 s  -",
        "ven. 20/11/2026  grenoble  pas de relevé",
    ]
    assert all(line.endswith("pas de relevé") for line in lines[1:7] + lines[8:])
    assert run_stats(site, monkeypatch, "report", "--group", "Grenoble", "--days", "2") == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "mer. 25/11/2026  grenoble  pas de relevé",
        "jeu. 26/11/2026  grenoble  pas de relevé",
    ]


@pytest.mark.parametrize("slug", ["lille", "paris"])
def test_report_names_lines_ini_for_a_group_without_queue(site, monkeypatch, capsys, slug):
    assert run_stats(site, monkeypatch, "report", "--group", slug) == 1
    assert capsys.readouterr().err.strip() == (
        f"stats.py : pas de file d'appels « {slug} » dans {site.lines_ini} (groupes de type queue : lyon)"
    )


@pytest.mark.parametrize("days", ["0", "-3", "sept", "3661", "800000"])
def test_report_needs_a_number_of_days(site, monkeypatch, capsys, days):
    with pytest.raises(SystemExit) as stop:
        run_stats(site, monkeypatch, "report", f"--days={days}")
    assert stop.value.code == 2
    assert f"« {days} » n'est pas un nombre de jours de 1 à 3660 (dix ans)" in capsys.readouterr().err


def test_report_goes_back_ten_years_at_most(site, monkeypatch, capsys):
    assert run_stats(site, monkeypatch, "report", "--days", "3660") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3661
    assert (lines[1], lines[-1]) == ("sam. 19/11/2016  lyon    pas de relevé", "jeu. 26/11/2026  lyon    pas de relevé")


def test_the_demo_history_has_a_reset_a_missing_day_and_answers(site):
    history = statistics_history(THURSDAY_AFTERNOON)
    settings = load_settings(site.lines_ini)
    group = settings.groups["lyon"]
    for record in history:
        append_record(record_path(settings, group, datetime.fromisoformat(record["time"])), record)
    first_day, last_day = THURSDAY - timedelta(days=29), THURSDAY
    month = daily_figures(read_records(settings, group, first_day, last_day), first_day, last_day)
    assert [f.day for f in month if not f.records] == [THURSDAY - timedelta(days=17)]
    resets = [
        i
        for i in range(1, len(history))
        if history[i]["statistics"]["lastReset"] != history[i - 1]["statistics"]["lastReset"]
    ]
    assert len(resets) == 1
    before, after = history[resets[0] - 1]["statistics"], history[-1]["statistics"]
    expected = before["callsAnswered"] - history[0]["statistics"]["callsAnswered"] + after["callsAnswered"]
    assert sum(f.answered for f in month) == expected > 60
    assert {number for f in month for number in f.agents} == {"0033639980011", "0033639980012"}


# --- The statistics page ----------------------------------------------------------


def table_rows(response):
    """The statistics table's body: the text of each cell of each row."""
    body = response.text.split("<tbody>")[1].split("</tbody>")[0]
    return [
        [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def test_the_page_shows_the_last_30_days_as_a_chart_and_a_table(site, monkeypatch):
    play_a_week(site, monkeypatch)
    requests = len(site.fake.requests)
    response = site.get("/lyon/stats")
    assert response.status_code == 200
    assert len(site.fake.requests) == requests  # Files only: no OVH request.
    page = text(response)
    assert "Statistiques Lyon" in page
    assert "Les 30 derniers jours, du mer. 28/10 au jeu. 26/11." in page
    assert "En tout : 8 appels, dont 7 répondus et 1 perdu. 27 jours sans relevé." in page

    svg = re.search(r"<svg [^>]*>.*</svg>", response.text, re.DOTALL)[0]
    assert re.match(r'<svg role="img" aria-labelledby="chart-title" viewBox="0 0 \d+ \d+" width="100%"', svg)
    assert '<title id="chart-title">Appels répondus et perdus par jour, du mer. 28/10 au jeu. 26/11' in svg
    bars = dict(
        (title, float(height))
        for height, title in re.findall(r'<rect [^>]*height="([\d.]+)"[^>]*><title>([^<]+)</title></rect>', svg)
    )
    assert len([title for title in bars if title.endswith("pas de relevé")]) == 27
    assert list(bars)[-5:] == [
        "lun. 23/11 : 2 répondus",
        "lun. 23/11 : 1 perdu",
        "mar. 24/11 : pas de relevé",
        "mer. 25/11 : 4 répondus",
        "jeu. 26/11 : 1 répondu",
    ]
    assert bars["mer. 25/11 : 4 répondus"] == 2 * bars["lun. 23/11 : 2 répondus"] == 4 * bars["jeu. 26/11 : 1 répondu"]
    assert ">répondus</text>" in svg and ">perdus</text>" in svg  # The legend.

    assert '<caption id="table-caption">Appels par jour</caption>' in response.text
    assert response.text.count('<th scope="col"') == 7
    rows = table_rows(response)
    assert len(rows) == 30
    assert rows[0] == ["mer. 28/10", "pas de relevé"]
    assert rows[-4:] == [
        ["lun. 23/11", "2", "1", "3", "2 min", "10 min", ""],
        ["mar. 24/11", "pas de relevé"],
        ["mer. 25/11", "4", "0", "4", "1 min", "20 min", ""],
        ["jeu. 26/11", "1", "0", "1", "0 s", "1 h 02", "06 •• •• •• 12"],
    ]


def test_the_page_keeps_to_the_content_security_policy(site, monkeypatch):
    play_a_week(site, monkeypatch)
    response = site.get("/lyon/stats")
    assert "style-src 'sha256-" in response.headers["Content-Security-Policy"]
    assert not re.search(r"<script|\sstyle=|\son\w+=|javascript:|https?://", response.text)


def test_the_group_page_links_to_its_statistics(site):
    assert '<a href="/lyon/stats">Statistiques des 30 derniers jours</a>' in site.get("/lyon").text
    assert "/stats" not in site.get("/lille").text


@pytest.mark.parametrize("path", ["/lille/stats", "/grenoble/stats", "/lyon/stats/2026"])
def test_statistics_of_a_redirect_or_unknown_group_are_not_found(site, path):
    response = site.get(path)
    assert response.status_code == 404
    assert "Page introuvable" in text(response)
    assert site.fake.requests == []


def test_the_page_only_answers_get_and_head(site):
    response = site.post("/lyon/stats", {"number": "0639980001"}, token=False)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    head = site.http.head(site.url + "/lyon/stats")
    assert (head.status_code, head.content) == (200, b"")
    assert site.fake.requests == []


def test_the_page_without_records_says_so(site):
    response = site.get("/lyon/stats")
    assert response.status_code == 200
    assert "Pas encore de statistiques pour ce groupe" in text(response)
    assert "<svg" not in response.text
    assert site.fake.requests == []


def test_the_page_escapes_the_group_name(site, monkeypatch):
    site.lines_ini.write_text(
        site.lines_ini.read_text(encoding="utf-8").replace("name = Lyon", "name = Lyon <b>& Ain</b>"), encoding="utf-8"
    )
    run_at(site, monkeypatch, THURSDAY_AFTERNOON)
    response = site.get("/lyon/stats")
    assert "Lyon &lt;b&gt;&amp; Ain&lt;/b&gt;" in response.text
    assert "<b>" not in response.text
