"""Notes on the head page in Chromium: a catalogue entry shows with its source, a user's note is written
through the form, listed apart from the computed labels, and deleted."""

from __future__ import annotations

from tests.browser.conftest import SCREENSHOTS, open_view

ENTRY = {"model": "tiny-starcoder2", "head": "L1H2", "label": "name mover", "source": "https://example.org/c"}


def test_notes_are_written_shown_apart_and_deleted(page):
    imported = page.request.post("/api/notes/catalogue", data={"entries": [ENTRY]})
    assert imported.ok, imported.text()
    open_view(page, "#/head/L1H2")
    catalogue = page.locator("#catalogue-notes li")
    catalogue.first.wait_for()
    assert catalogue.count() == 1 and "name mover" in catalogue.first.inner_text()
    assert catalogue.first.locator("a").get_attribute("href") == ENTRY["source"]
    # The catalogue's label is not one of the computed labels.
    assert "name mover" not in page.locator("#head-labels").inner_text()

    page.fill("#note-form input[name=label]", "checks brackets")
    page.fill("#note-form textarea[name=note]", "strong on closing braces only")
    page.click("#note-form button[type=submit]")
    mine = page.locator("#user-notes li")
    mine.first.wait_for()
    assert "checks brackets" in mine.first.inner_text()
    stored = page.request.get("/api/notes?kind=head&target=L1H2").json()
    assert {(n["origin"], n["label"]) for n in stored} == {
        ("catalogue", "name mover"),
        ("user", "checks brackets"),
    }
    page.locator("#notes-panel").screenshot(path=str(SCREENSHOTS / "head_notes.png"))

    for _ in range(2):  # delete both, through the page
        page.locator("#notes-panel li button").first.click()
        page.wait_for_function(
            "n => document.querySelectorAll('#notes-panel li').length === n", arg=len(stored) - 1
        )
        stored = page.request.get("/api/notes?kind=head&target=L1H2").json()
    assert stored == []
