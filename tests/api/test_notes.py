"""Notes, user labels and catalogues of known heads through the API and the CLI: stored in the database,
shown apart from the computed labels, exported as JSON, and every bad input refused in the error shape."""

from __future__ import annotations

import json

import pytest

from tests.api.test_hostile_input import refused

CATALOGUE = [
    {"model": "tiny-starcoder2", "head": "L1H2", "label": "induction", "source": "https://example.org/paper#t2"},
    {"model": "tiny-starcoder2", "head": "L0H1", "label": "previous token", "source": "https://example.org/b",
     "note": "from a probe", "author": "someone"},
]  # fmt: skip


@pytest.fixture(scope="module")
def client(private_atlas_client):
    return private_atlas_client


def test_a_user_note_is_stored_listed_and_deleted(client):
    made = client.post(
        "/api/notes", json={"kind": "head", "target": "L1H2", "label": "copies names", "note": "see L1H2:0"}
    )
    assert made.status_code == 201, made.text
    note = made.json()
    assert note["origin"] == "user" and note["model"] == "tiny-starcoder2" and note["target"] == "L1H2"
    listed = client.get("/api/notes", params={"kind": "head", "target": "L1H2"}).json()
    assert [n["id"] for n in listed] == [note["id"]]
    # A user's label is not one of the atlas's computed labels.
    profile = client.get("/api/heads/L1H2").json()
    assert "copies names" not in {label["label"] for label in profile["labels"]}
    assert client.delete(f"/api/notes/{note['id']}").status_code == 204
    assert client.get("/api/notes", params={"kind": "head", "target": "L1H2"}).json() == []
    refused(client.delete(f"/api/notes/{note['id']}"), 404)


def test_a_catalogue_is_imported_once_and_exported(client):
    first = client.post("/api/notes/catalogue", json={"entries": CATALOGUE}).json()
    again = client.post("/api/notes/catalogue", json={"entries": CATALOGUE}).json()
    assert (first["added"], first["skipped"]) == (2, 0) and (again["added"], again["skipped"]) == (0, 2)
    exported = client.get("/api/notes/export").json()
    catalogue = [n for n in exported if n["origin"] == "catalogue"]
    assert {(n["target"], n["label"], n["source_url"]) for n in catalogue} == {
        ("L1H2", "induction", "https://example.org/paper#t2"),
        ("L0H1", "previous token", "https://example.org/b"),
    }


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "head", "target": "L1H2"},  # neither label nor note
        {"kind": "head", "target": "head 3", "label": "x"},
        {"kind": "cluster", "target": "L1H2:0", "label": "x"},  # a cluster needs its clustering
        {"kind": "cluster", "target": "L1H2", "scope_id": 1, "label": "x"},
        {"kind": "family", "target": "four", "scope_id": 1, "label": "x"},
        {"kind": "planet", "target": "L1H2", "label": "x"},
        {"kind": "head", "target": "L1H2", "label": "x" * 101},
        {"kind": "head", "target": "L1H2", "note": ""},
    ],
)
def test_bad_notes_are_refused(client, body):
    refused(client.post("/api/notes", json=body))


@pytest.mark.parametrize(
    "entry",
    [
        {"model": "m", "head": "L1H2", "label": "x", "source": "not a url"},
        {"model": "m", "head": "L1H2", "label": "x"},
        {"model": "m", "head": "nope", "label": "x", "source": "https://a.b"},
        {"model": "m", "head": "L1H2", "label": "", "source": "https://a.b"},
    ],
)
def test_bad_catalogue_entries_are_refused_and_nothing_is_stored(client, entry):
    before = len(client.get("/api/notes/export").json())
    good = {"model": "m", "head": "L0H0", "label": "fine", "source": "https://a.b"}
    refused(client.post("/api/notes/catalogue", json={"entries": [good, entry]}))
    assert len(client.get("/api/notes/export").json()) == before


def test_the_cli_imports_and_exports(tmp_path, tiny_atlas):
    from typer.testing import CliRunner

    from attnlens.cli import app

    settings, _, _ = tiny_atlas
    data = tmp_path / "data"
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(CATALOGUE))
    runner = CliRunner()
    done = runner.invoke(app, ["--data-dir", str(data), "heads", "import-catalogue", str(path)])
    assert done.exit_code == 0, done.output
    assert "imported 2" in done.output
    out = tmp_path / "notes.json"
    done = runner.invoke(app, ["--data-dir", str(data), "heads", "notes", "--output", str(out)])
    assert done.exit_code == 0, done.output
    assert [n["label"] for n in json.loads(out.read_text())] == ["induction", "previous token"]
