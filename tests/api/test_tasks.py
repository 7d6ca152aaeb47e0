"""GET /api/tasks: the one task list, what each task can be used for, and the atlas's counts per task."""

from __future__ import annotations

from attnlens.contracts.tasks import AUTO_TASKS, CURSOR_TASKS, TASKS


def test_tasks_list_every_task_with_its_uses_and_counts(atlas_client):
    tasks = atlas_client.get("/api/tasks").json()
    assert [t["name"] for t in tasks] == list(TASKS)
    by_name = {t["name"]: t for t in tasks}
    assert not by_name["random"]["at_cursor"] and not by_name["noise"]["auto_holes"]
    assert by_name["noise"]["control"] and not by_name["identifiers"]["control"]
    assert [t["name"] for t in tasks if t["at_cursor"]] == list(CURSOR_TASKS)
    assert [t["name"] for t in tasks if t["auto_holes"]] == list(AUTO_TASKS)
    # The counts agree with the inference listing, task by task (one request instead of two per task):
    # the atlas's mined completions, and pasted ones apart.
    for task in tasks:

        def listed(name: str = task["name"], **params) -> int:
            query = {"task": name, "limit": 1, **params}
            return atlas_client.get("/api/inferences", params=query).json()["total"]

        counts = (task["inferences"], task["first_token_correct"], task["pasted"])
        expected = (
            listed(source="mined"),
            listed(source="mined", first_token_correct=True),
            listed(source="pasted"),
        )
        assert counts == expected, task["name"]
    assert sum(t["inferences"] for t in tasks) > 0
    other = atlas_client.get("/api/tasks", params={"model": "no-such-model"}).json()
    assert {t["inferences"] for t in other} == {0}


def test_every_cursor_task_is_accepted_by_analyze_and_others_are_refused(atlas_client):
    code = "class A { int f(int x) { return x + 1; } }"
    for task in ("random", "noise"):
        response = atlas_client.post("/api/analyze", json={"code": code, "hole": {"cursor": 0, "task": task}})
        assert response.status_code == 422 and response.json()["code"] == "invalid_hole", task


def test_each_tasks_accuracy_comes_with_its_wilson_interval(atlas_client):
    from attnlens.analysis.stats import wilson_interval

    for task in atlas_client.get("/api/tasks").json():
        if task["inferences"] == 0:  # no completions: no accuracy, no interval
            assert task["first_token_accuracy_low"] is None and task["first_token_accuracy_high"] is None
            continue
        expected = wilson_interval(task["first_token_correct"], task["inferences"])
        served = (task["first_token_accuracy_low"], task["first_token_accuracy_high"])
        assert served == (expected.low, expected.high)
        assert expected.low <= task["first_token_correct"] / task["inferences"] <= expected.high
