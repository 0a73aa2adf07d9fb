"""stats.py: one record per queue group and run, housekeeping of forgotten periods."""

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from fake_ovh import LYON_NUMBER
from webpage import THURSDAY_AFTERNOON

import stats

ROOT = Path(__file__).resolve().parent.parent


def records(site, day="2026-11-26"):
    path = site.folder / "data" / "stats" / "lyon" / f"{day}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_stats(site, monkeypatch):
    monkeypatch.setattr(stats.index, "application", stats.index.App(lines_ini=site.lines_ini))
    return stats.main()


def test_each_run_appends_one_record_per_queue_group(site, monkeypatch, capsys):
    site.act("/lyon/start", {"number": "0639980001"})
    site.fake.add_live_call(LYON_NUMBER, state="Answered", agent="0033639980001")
    assert run_stats(site, monkeypatch) == 0
    site.fake.add_statistics(LYON_NUMBER, answered=2, lost=1)
    assert run_stats(site, monkeypatch) == 0
    first, second = records(site)
    assert first["time"] == "2026-11-26T16:28:00+01:00"
    assert first["calls"][0]["agent"] == "0033639980001"
    assert second["statistics"]["callsAnswered"] == first["statistics"]["callsAnswered"] + 2
    assert second["statistics"]["callsLost"] == first["statistics"]["callsLost"] + 1
    assert not (site.folder / "data" / "stats" / "lille").exists()
    assert capsys.readouterr() == ("", "")


def test_a_failing_group_does_not_stop_the_others(site, monkeypatch, capsys):
    with open(site.lines_ini, "a", encoding="utf-8") as file:
        file.write("\n[grenoble]\nname = Grenoble\nkind = queue\nbilling_account = ab12345-ovh-1\n")
        file.write("number = 0033465719999\n")
    assert run_stats(site, monkeypatch) == 1
    assert len(records(site)) == 1
    assert capsys.readouterr().err.splitlines() == [
        "stats.py : [grenoble] OVH ne connaît pas la ligne de ce groupe. (" + "ResourceNotFoundError: "
        "The requested object (serviceName = 0033465719999) does not exist)"
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
