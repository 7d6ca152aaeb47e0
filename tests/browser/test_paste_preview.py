"""The paste page previews the hole before running, in Chromium over the tiny atlas: with a cursor task
chosen, the preview under the editor names the hole the server would make (POST /api/analyze/holes), says
so plainly when there is none, follows the cursor and the task, and the run then completes that very hole."""

from __future__ import annotations

import pytest

from tests.browser.conftest import SCREENSHOTS, open_view

pytestmark = pytest.mark.browser

SNIPPET = """public class Account {
    private int balance;

    public void deposit(int amount) {
        balance += amount;
        audit(amount);
    }

    public boolean isEmpty() {
        return balance == 0;
    }
}
"""


def show_token(text: str) -> str:
    """dom.js `showToken`: white space made visible."""
    return text.replace("\n", "↵").replace("\t", "→").replace(" ", "·")


def utf16(code: str, index: int) -> int:
    return len(code[:index].encode("utf-16-le")) // 2


def preview_after(page, action) -> dict:
    """Do `action`; the preview answer it caused, once the page has shown it."""
    with page.expect_response(lambda r: "/api/analyze/holes" in r.url) as answer:
        action()
    page.wait_for_selector("#hole-preview:not([data-state=pending])")
    assert answer.value.ok
    return answer.value.json()


def cursor_to(page, code: str, index: int):
    """An action: put the cursor just before code point `index` and step onto it with the arrow key, as a
    user does (the page follows key and mouse events)."""

    def act() -> None:
        page.evaluate(
            "(c) => { const t = document.querySelector('#code'); t.focus(); t.setSelectionRange(c, c); }",
            utf16(code, index - 1),
        )
        page.keyboard.press("ArrowRight")

    return act


def shown(page) -> dict:
    panel = page.locator("#hole-preview")
    return {
        "state": panel.get_attribute("data-state"),
        "start": panel.get_attribute("data-start"),
        "end": panel.get_attribute("data-end"),
        "task": panel.get_attribute("data-task"),
        "expected": page.locator("#hole-preview .preview-expected").first.inner_text(),
        "marked": page.locator("#hole-preview mark.preview-hole").first.inner_text(),
        "summary": page.locator("#hole-preview-summary").inner_text(),
    }


def test_cursor_mode_previews_the_hole_follows_the_cursor_and_the_run_completes_it(page):
    open_view(page, "#/paste")
    page.wait_for_selector("#hole-preview:not([data-state=pending])")  # the example's first hole
    page.fill("#code", SNIPPET)
    # After filling, the cursor sits at the end: no identifier follows it, and the preview says so.
    none = preview_after(page, lambda: page.select_option("#task", "identifiers"))
    assert none["holes"] == [] and none["error"]["code"] == "invalid_hole"
    assert page.locator("#hole-preview").get_attribute("data-state") == "none"
    assert page.locator("#no-hole").inner_text().startswith("No hole at the cursor for task identifiers: ")
    assert page.locator("#hole-preview mark").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "paste_preview_no_hole.png"), full_page=True)

    # In the indentation before `balance += amount`: the hole is `balance`.
    first = preview_after(page, cursor_to(page, SNIPPET, SNIPPET.index("balance +=") - 2))
    (hole,) = first["holes"]
    assert first["aligned"] is True and hole["task"] == "identifiers"
    assert SNIPPET[hole["target_start"] : hole["target_end"]] == "balance"
    seen = shown(page)
    assert seen["state"] == "ready" and seen["task"] == "identifiers"
    assert (seen["start"], seen["end"]) == (str(hole["start"]), str(hole["end"]))
    assert seen["expected"] == show_token(hole["expected_text"]) == seen["marked"]
    assert "“Complete at the cursor” would complete this hole" in seen["summary"]
    assert "balance" in seen["marked"]
    page.screenshot(path=str(SCREENSHOTS / "paste_preview_cursor.png"), full_page=True)

    # One step past `balance`: the next identifier is `amount`, and the preview moves with the cursor.
    moved = preview_after(page, cursor_to(page, SNIPPET, SNIPPET.index("balance +=") + 1))
    (after,) = moved["holes"]
    assert SNIPPET[after["target_start"] : after["target_end"]] == "amount" and after["start"] > hole["start"]
    assert shown(page)["start"] == str(after["start"]) and "amount" in shown(page)["marked"]

    # Rapid moves through other holes: what stays is the last position's hole (debounced; an answer that a
    # newer request overtook is dropped).
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/analyze/holes" in r.url else None)
    cursor_to(page, SNIPPET, SNIPPET.index("audit(") - 3)()
    for key in ("ArrowDown", "ArrowDown", "ArrowUp", "ArrowUp"):
        page.keyboard.press(key)
    audit = SNIPPET.index("audit(")
    page.wait_for_selector(f"#hole-preview[data-state=ready][data-target-start='{audit}']")
    page.wait_for_timeout(600)  # nothing later may replace it
    assert page.locator("#hole-preview").get_attribute("data-target-start") == str(audit)
    assert 1 <= len(sent) <= 6

    # Another task at the same cursor: the hole is the call's name.
    called = preview_after(page, lambda: page.select_option("#task", "function_call"))
    (call,) = called["holes"]
    assert call["task"] == "function_call" and SNIPPET[call["target_start"] : call["target_end"]] == "audit"
    assert shown(page)["task"] == "function_call"

    # Run: the completion is for exactly the previewed hole (its text, and its offsets in the stored row).
    with page.expect_response(lambda r: r.url.endswith("/api/analyze")) as answer:
        page.click("#analyze")
    page.wait_for_selector("#analyze-result dl")
    result = answer.value.json()
    assert result["task"] == "function_call" and result["target_text"] == call["expected_text"]
    stored = page.request.get(f"/api/inferences/{result['inference_id']}").json()
    source = SNIPPET.encode()
    assert (len(source[: stored["hole_start"]].decode()), len(source[: stored["hole_end"]].decode())) == (
        call["start"],
        call["end"],
    )
    expected_shown = page.locator("#analyze-result dl").first.locator("dd").nth(2).inner_text()
    assert expected_shown == show_token(call["expected_text"]) == shown(page)["expected"]
    page.screenshot(path=str(SCREENSHOTS / "paste_preview_after_run.png"), full_page=True)


def test_selection_and_automatic_holes_are_previewed_too(page):
    open_view(page, "#/paste")
    page.wait_for_selector("#hole-preview:not([data-state=pending])")
    page.fill("#code", SNIPPET)
    start = SNIPPET.index("amount;")

    def select() -> None:
        page.evaluate(
            "([s, e]) => { const t = document.querySelector('#code'); t.focus(); t.setSelectionRange(s, e);"
            " t.dispatchEvent(new Event('select')); }",
            [utf16(SNIPPET, start), utf16(SNIPPET, start + 6)],
        )

    selected = preview_after(page, select)
    (hole,) = selected["holes"]
    assert hole["task"] is None and (hole["target_start"], hole["target_end"]) == (start, start + 6)
    seen = shown(page)
    assert seen["task"] == "selection" and "“Complete at the selection” would" in seen["summary"]

    auto = preview_after(page, lambda: page.select_option("#auto-task", "closing_bracket"))
    (last,) = auto["holes"]
    assert last["task"] == "closing_bracket" and last["target_start"] == SNIPPET.rindex("}")
    seen = shown(page)
    assert seen["task"] == "closing_bracket" and "“Pick holes automatically” would" in seen["summary"]
    assert page.locator("#hole-preview").get_attribute("data-mode") == "auto"
    page.screenshot(path=str(SCREENSHOTS / "paste_preview_auto.png"), full_page=True)
    # No boolean literal anywhere: the automatic picker's preview says there is no hole of that task.
    none = preview_after(page, lambda: page.select_option("#auto-task", "boolean_literals"))
    assert none["error"]["code"] == "invalid_hole"
    assert page.locator("#no-hole").inner_text().startswith("No automatic hole for task boolean_literals: ")
