"""The heads that matter per task (GET /api/predictors/heads), on a predicted atlas: each task's most accurate
head-ranking predictor, its heads in the order of that predictor's own detail, and the chance verdict."""

from __future__ import annotations


def test_each_task_names_its_best_predictors_top_heads(full_atlas):
    client, _ids = full_atlas
    answer = client.get("/api/predictors/heads", params={"top": 3})
    assert answer.status_code == 200
    rows = answer.json()
    assert rows, "the predicted atlas has predictors that rank heads"
    summaries = client.get("/api/predictors").json()
    for row in rows:
        # Every predictor of the task that ranks heads, from its own detail page.
        ranking = {}
        for summary in summaries:
            if summary["task"] != row["task"]:
                continue
            detail = client.get(f"/api/predictors/{summary['id']}").json()
            if detail["head_importance"]:
                ranking[summary["id"]] = (summary["accuracy"], detail)
        best = max(ranking, key=lambda pid: ranking[pid][0])
        assert row["predictor_id"] == best
        detail = ranking[best][1]
        expected = sorted(detail["head_importance"], key=lambda e: -e["mean_abs_shap"])[:3]
        assert [h["name"] for h in row["heads"]] == [e["name"] for e in expected]
        chance, low, high = detail["chance"], detail["accuracy_low"], detail["accuracy_high"]
        assert row["above_chance"] == (chance is not None and low > chance)
        assert (row["accuracy_low"], row["accuracy_high"]) == (low, high)


def test_bad_counts_are_refused(full_atlas):
    client, _ids = full_atlas
    for top in ("0", "51", "x"):
        response = client.get("/api/predictors/heads", params={"top": top})
        assert (response.status_code, response.json()["code"]) == (422, "invalid_request")
