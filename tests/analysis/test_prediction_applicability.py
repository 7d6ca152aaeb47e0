"""Whether a predictor's measured accuracy applies to a new input (`attnlens.atlas.applicability`),
and the held-out kNN agreement the clustering job stores for it (`analysis.assign.holdout_agreement`)."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis.assign import holdout_agreement
from attnlens.atlas.applicability import KNN_AGREEMENT_FLOOR, applicability

MEASURED = {"overall": {"agree": 1900, "held_out": 2000, "rate": 0.95, "low": 0.94, "high": 0.959}}
LOW = {"overall": {"agree": 3323, "held_out": 4320, "rate": 0.7692, "low": 0.7564, "high": 0.7815}}


def judge(**changes):
    given = {
        "prompt_tokens": 256, "window_tokens": 256, "model_name": "smollm2", "predictor_model": "smollm2",
        "embedder": "default", "predictor_embedder": "default", "cluster_ids": False, "knn_agreement": None,
    }  # fmt: skip
    return applicability(**{**given, **changes})


def test_a_short_window_is_not_in_distribution():
    judged = judge(prompt_tokens=41)
    assert not judged.applies
    assert judged.reason == (
        "measured on 256-token atlas windows; this paste's prompt is 41 tokens, "
        "so the measured accuracy does not apply to it"
    )
    assert not judge(prompt_tokens=512).applies  # longer than any atlas window: no row looked like it
    assert not judge(prompt_tokens=None).applies  # not known: no claim


def test_a_full_window_in_the_same_space_is_in_distribution():
    judged = judge()
    assert judged.applies
    assert judged.reason == "measured on windows like this one (256 tokens, same model and AP-MAE checkpoint)"
    clusters = judge(cluster_ids=True, knn_agreement=MEASURED)
    assert clusters.applies
    assert clusters.reason.endswith(
        "cluster ids by kNN agree with the clustering's labels on 95% [94%, 96%] of held-out atlas rows"
    )


def test_another_embedding_space_or_model_is_not_in_distribution():
    other = judge(embedder="/ckpt/apmae-starcoder2-3b/best")
    assert not other.applies and "AP-MAE checkpoint default, not of the worker's /ckpt/" in other.reason
    assert not judge(embedder=None).applies
    assert not judge(predictor_embedder=None).applies
    model = judge(model_name="starcoder2-3b")
    assert not model.applies and "not on the served model starcoder2-3b's" in model.reason
    both = judge(prompt_tokens=41, embedder="other")  # every reason is named
    assert "41 tokens" in both.reason and "other" in both.reason


def test_cluster_ids_need_a_measured_and_high_knn_agreement():
    assert LOW["overall"]["low"] < KNN_AGREEMENT_FLOOR
    low = judge(cluster_ids=True, knn_agreement=LOW)
    assert not low.applies and "on only 77% [76%, 78%] of held-out atlas rows" in low.reason
    unmeasured = judge(cluster_ids=True, knn_agreement=None)
    assert not unmeasured.applies and "attnlens atlas cluster" in unmeasured.reason
    assert judge(cluster_ids=False, knn_agreement=LOW).applies  # embeddings are not placed by kNN


def test_holdout_agreement_holds_out_a_seeded_share():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(3, 8))
    labels = np.repeat(np.arange(3), 50)
    separated = (directions[labels] + rng.normal(0, 0.05, size=(150, 8))).astype(np.float32)
    measured = holdout_agreement(separated, labels, 5, seed=(0, 1, 2))
    assert measured.held_out == 30 and measured.agree == 30
    assert measured.majority_agree < 20  # the baseline (each row gets the most common label) does worse
    assert holdout_agreement(separated, labels, 5, seed=(0, 1, 2)) == measured  # seeded
    shuffled = rng.permutation(labels)  # labels that say nothing about the embeddings
    chance = holdout_agreement(separated, shuffled, 5, seed=(0, 1, 2), max_reference=40)
    assert chance.held_out == 30 and chance.agree < 20
    assert holdout_agreement(separated[:2], labels[:2], 5, seed=0).held_out == 0  # too few rows
    with pytest.raises(Exception, match="holdout"):
        holdout_agreement(separated, labels, 5, seed=0, holdout=1.0)
