"""Files of data/ that are odd (valid JSON of another shape, cut short, another encoding): never a page in error."""

import pytest
from webpage import text

import index
from cimade_ovh.commands import check
from cimade_ovh.sharing import SHARE_SECONDS

ODD_RECORDS = [
    "[]", "1", '"text"', "null", "{}", '{"stamp": "", "kind": "queue"}',
    '{"stamp": "", "kind": "queue", "began": 0, "snapshot": []}',
    '{"stamp": "", "kind": "queue", "began": "now", "snapshot": {"queue_id": 1}}',
    '{"stamp": "", "kind": "redirect", "began": 1e300, "snapshot": {"sip_line": 5}}',
    '{"stamp": "", "kind": "queue", "ended": "later", "failure": {"reason": "server"}}',
    '{"stamp": "", "kind": "queue", "ended": 1e300, "failure": []}',
    '{"endpoint": 1, "asked": "x", "offset": "y"}', '{"key": [], "asked": [], "expiration": 3}',
]  # fmt: skip


@pytest.mark.parametrize("name", ["lyon.json", "lille.json", "clock.json", "credential.json"])
@pytest.mark.parametrize("record", ODD_RECORDS)
def test_an_odd_record_of_data_shared_is_taken_as_none(site, name, record):
    site.app.reads.seconds = SHARE_SECONDS  # As in production: the processes share their reads.
    shared = site.folder / "data" / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    (shared / name).write_text(record, encoding="utf-8")
    for slug in ("lyon", "lille"):
        page = text(site.get(f"/{slug}"))
        assert "Impossible de lire" not in page and "Permanence téléphonique" in page
    assert site.mails() == []


@pytest.mark.parametrize("record", ODD_RECORDS)
def test_check_reads_past_an_odd_record_of_data_shared(site, capsys, record):
    shared = site.folder / "data" / "shared"
    shared.mkdir(parents=True, exist_ok=True)
    for name in ("clock.json", "credential.json", "lyon.json"):
        (shared / name).write_text(record, encoding="utf-8")
    check(index.App(lines_ini=site.lines_ini))
    out = capsys.readouterr().out
    assert "Error" not in out and "ok     [lyon]" in out and "ok     [lille]" in out


def test_a_list_of_coded_groups_in_another_encoding_is_a_data_folder_error(site):
    (site.folder / "data" / "access-codes.groups").write_bytes("lyon\nlille\xe9\n".encode("latin-1"))
    for path in ("/", "/lyon"):
        response = site.get(path)
        assert response.status_code == 500
        assert "La page ne peut pas écrire dans son dossier de données" in text(response)
        assert "inattendue" not in text(response)
