"""Correctness predictors on synthetic tasks with a known signal: cross-validation, controls, final
models, serialisation, and the SHAP identity."""

from __future__ import annotations

import numpy as np
import pytest

from attnlens.analysis import (
    ClusterCatBoostPredictor,
    EmbeddingPCAPredictor,
    cross_validate_predictor,
    head_shap_values,
    predictor_from_bytes,
    predictor_to_bytes,
    train_final_predictor,
)
from attnlens.errors import InsufficientData, InvalidInput

KINDS = ["clusters_catboost", "embeddings_pca_logreg"]


def features_of(task, kind: str) -> np.ndarray:
    return task.cluster_ids if kind == "clusters_catboost" else task.embeddings


@pytest.fixture(scope="module")
def evaluations(task):
    from attnlens.config import AnalysisSettings

    settings = AnalysisSettings(predictor_iterations=200, cv_folds=4)
    return {
        kind: cross_validate_predictor(kind, features_of(task, kind), task.correct, task.heads, settings)
        for kind in KINDS
    }


@pytest.mark.parametrize("kind", KINDS)
def test_cross_validation_recovers_a_known_signal(evaluations, task, kind):
    evaluation = evaluations[kind]
    # Best possible accuracy is 0.77 and chance 0.5: the whole 95% interval must sit well above chance.
    assert evaluation.accuracy.low > 0.65
    assert evaluation.accuracy.high > 0.72
    assert evaluation.roc_auc > 0.7
    assert evaluation.brier < 0.21  # a constant 0.5 scores 0.25
    assert evaluation.n_rows == len(task.correct) and evaluation.n_correct == int(task.correct.sum())
    assert len(evaluation.fold_accuracies) == 4
    assert evaluation.out_of_fold_probability.shape == (len(task.correct),)
    assert sum(b.count for b in evaluation.reliability) == len(task.correct)


@pytest.mark.parametrize("kind", KINDS)
def test_shuffled_label_control_lands_at_chance(evaluations, kind):
    control = evaluations[kind].shuffled_control
    assert control is not None and control.shuffled_control is None
    assert control.accuracy.covers(0.5)
    assert control.brier > 0.24  # no better than a coin
    assert abs(control.roc_auc - 0.5) < 0.1


def test_catboost_rounds_come_from_early_stopping(evaluations):
    rounds = evaluations["clusters_catboost"].rounds
    assert len(rounds) == 4 and all(1 <= r <= 200 for r in rounds)
    assert evaluations["clusters_catboost"].final_rounds == int(np.median(rounds))
    assert evaluations["embeddings_pca_logreg"].final_rounds is None


@pytest.mark.parametrize("kind", KINDS)
def test_final_model_round_trips_through_bytes(evaluations, task, fast_settings, kind):
    features = features_of(task, kind)
    predictor = train_final_predictor(
        kind, features, task.correct, task.heads, fast_settings, evaluation=evaluations[kind]
    )
    probability = predictor.predict_proba(features[:50])
    assert probability.shape == (50,) and np.all((probability > 0) & (probability < 1))
    # Rows where the signal head is in cluster 0 are mostly correct; the model must say so.
    signal = task.cluster_ids[:, task.signal_head] == 0
    full = predictor.predict_proba(features)
    assert full[signal].mean() > 0.7
    assert full[~signal].mean() < 0.4

    restored = predictor_from_bytes(predictor_to_bytes(predictor))
    assert type(restored) is type(predictor) and restored.heads == task.heads
    np.testing.assert_allclose(restored.predict_proba(features[:50]), probability, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_shap_values_add_up_to_the_log_odds(task, fast_settings, kind):
    features = features_of(task, kind)
    predictor = train_final_predictor(kind, features, task.correct, task.heads, fast_settings)
    shap = head_shap_values(predictor, features[:80])
    assert shap.values.shape == (80, len(task.heads))
    np.testing.assert_allclose(
        shap.values.sum(axis=1) + shap.expected_value,
        predictor.raw_score(features[:80]),
        rtol=1e-6,
        atol=1e-6,
    )
    # The head that carries the signal is the most important one: this fails if columns are shifted by one.
    importance = shap.mean_abs_per_head()
    assert max(importance, key=importance.get) == task.heads[task.signal_head]


def test_catboost_shap_column_layout_puts_expected_value_last(task, fast_settings):
    predictor = train_final_predictor(
        "clusters_catboost", task.cluster_ids, task.correct, task.heads, fast_settings
    )
    assert isinstance(predictor, ClusterCatBoostPredictor)
    raw = predictor.model.get_feature_importance(
        data=predictor.pool(task.cluster_ids[:20]), type="ShapValues"
    )
    shap = head_shap_values(predictor, task.cluster_ids[:20])
    np.testing.assert_array_equal(shap.values, raw[:, :-1])
    assert np.all(raw[:, -1] == shap.expected_value)


def test_embedding_predictor_is_plain_arrays(task, fast_settings):
    predictor = train_final_predictor(
        "embeddings_pca_logreg", task.embeddings, task.correct, task.heads, fast_settings
    )
    assert isinstance(predictor, EmbeddingPCAPredictor)
    k = fast_settings.predictor_pca_components
    assert predictor.pca_components.shape == (len(task.heads), k, task.embeddings.shape[2])
    assert predictor.coef.shape == (len(task.heads) * k,)
    assert predictor.regularisation_c in fast_settings.predictor_logreg_c_grid


def test_one_class_or_too_few_rows_is_refused(task, fast_settings):
    with pytest.raises(InsufficientData, match="correct and"):
        cross_validate_predictor(
            "clusters_catboost", task.cluster_ids, np.ones(len(task.correct), bool), task.heads, fast_settings
        )
    with pytest.raises(InsufficientData):
        cross_validate_predictor(
            "clusters_catboost", task.cluster_ids[:12], task.correct[:12], task.heads, fast_settings
        )


def test_wrong_shapes_and_kinds_are_refused(task, fast_settings):
    with pytest.raises(InvalidInput, match="rows, heads, dim"):
        cross_validate_predictor(
            "embeddings_pca_logreg", task.cluster_ids, task.correct, task.heads, fast_settings
        )
    with pytest.raises(InvalidInput, match="unknown predictor kind"):
        cross_validate_predictor("forest", task.cluster_ids, task.correct, task.heads, fast_settings)
    with pytest.raises(InvalidInput, match="one correctness label per row"):
        cross_validate_predictor(
            "clusters_catboost", task.cluster_ids, task.correct[:-1], task.heads, fast_settings
        )


def test_damaged_blob_is_refused():
    with pytest.raises(InvalidInput, match="damaged"):
        predictor_from_bytes(b"not a zip")


def test_signed_mean_shap_over_the_training_rows_hides_direction(task, fast_settings):
    """Why `mean_per_head` takes a row subset: over the rows a tree model was fitted on, each head's SHAP
    values are centred (signed mean near 0) even for the head that drives every prediction; over the
    incorrect rows, the same head's mean is clearly negative and over the correct rows clearly positive."""
    predictor = train_final_predictor(
        "clusters_catboost", task.cluster_ids, task.correct, task.heads, fast_settings
    )
    shap = head_shap_values(predictor, task.cluster_ids)
    signal = task.heads[task.signal_head]
    assert abs(shap.mean_per_head()[signal]) < 0.05
    assert shap.mean_abs_per_head()[signal] > 0.3
    assert shap.mean_per_head(~task.correct)[signal] < -0.15
    assert shap.mean_per_head(np.flatnonzero(task.correct))[signal] > 0.15


@pytest.mark.parametrize("kind", ["clusters_catboost", "embeddings_pca_logreg"])
def test_ranking_over_the_rows_acted_on_puts_the_signal_head_first(kind, fast_settings):
    """The rules rank by mean positive / mean negative SHAP over held-out rows (the rows an experiment acts
    on), so the head that drives correctness comes first for both rules, with either predictor kind. The
    first version ranked by the signed mean over the training rows, about 0 for every head."""
    from attnlens.analysis import HeadRanking, select_heads
    from tests.analysis.conftest import make_task

    whole = make_task(n_rows=600)
    train, held_out = slice(0, 400), slice(400, 600)
    features = whole.cluster_ids if kind == "clusters_catboost" else whole.embeddings
    predictor = train_final_predictor(kind, features[train], whole.correct[train], whole.heads, fast_settings)
    shap = head_shap_values(predictor, features[held_out])
    ranking = HeadRanking.from_shap(shap.heads, shap.values)
    signal = whole.heads[whole.signal_head]
    assert ranking.rows == 200
    for rule in ("top_positive", "top_negative"):
        assert select_heads(ranking, rule, 3, eps=1e-5, seed=0).heads[0] == signal, rule
    assert ranking.top(1)[0]["name"] == signal.name
    # Nor is it "neutral" (|signed mean| <= eps) on these rows.
    assert signal not in select_heads(ranking, "neutral", 12, eps=1e-3, seed=0).heads
