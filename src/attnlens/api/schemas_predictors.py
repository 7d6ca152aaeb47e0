"""What the predictor detail endpoint returns: one predictor with the evidence behind its accuracy (folds,
chance, calibration, the shuffled-label control, per-head SHAP). The predictor page reads exactly these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from attnlens.api.schemas import PredictorSummary


class ReliabilityBinPublic(BaseModel):
    """One equal-width bin of out-of-fold P(correct): how often the completion was right where the predictor
    said `mean_predicted` (a calibrated predictor has observed_rate == mean_predicted)."""

    low: float
    high: float
    count: int = Field(description="Out-of-fold rows whose predicted probability fell in [low, high).")
    mean_predicted: float | None = Field(description="Mean predicted P(correct) in the bin; null if empty.")
    observed_rate: float | None = Field(
        description="Share of the bin's rows that were correct; null if empty."
    )


class ShuffledControlPublic(BaseModel):
    """The same cross-validation on randomly permuted labels: what the procedure scores on no signal."""

    accuracy: float
    accuracy_low: float = Field(description="95% interval of the control's accuracy, lower end.")
    accuracy_high: float
    brier: float | None
    roc_auc: float | None


class HeadImportancePublic(BaseModel):
    """One head's SHAP importance in the final (all-rows) model, over its training rows."""

    name: str = Field(description="`L{layer}H{head}`.")
    layer: int
    head: int
    mean_abs_shap: float = Field(description="Mean |SHAP| (log-odds of correct): how much the head moves it.")
    mean_shap: float = Field(
        description="Signed mean SHAP over the training rows; near 0 by construction (SHAP values are "
        "centred on the mean prediction), which is why mean |SHAP| ranks heads."
    )


class IntervalPublic(BaseModel):
    estimate: float
    low: float = Field(description="95% interval, lower end.")
    high: float


class ScorePublic(BaseModel):
    """Quality of one set of out-of-fold probabilities of "correct" on the rows of its row set."""

    n_rows: int
    accuracy: IntervalPublic = Field(description="Accuracy at threshold 0.5, Wilson 95% interval.")
    roc_auc: float | None = Field(description="ROC AUC; null when the rows hold one class only.")
    brier: float
    chance: float = Field(description="Majority-class rate of these rows (0.5 on a balanced set).")


class RowSetBaselines(BaseModel):
    """The attention predictor beside the model's own confidence on one set of rows."""

    reason: str | None = Field(None, description="Why this row set has no figures; the rest is then null.")
    per_class: int | None = Field(None, description="Balanced set: rows of each class.")
    fraction: float | None = Field(None, description="Exact-hole set: its share of the task's rows.")
    attention: ScorePublic | None = None
    confidence: ScorePublic | None = Field(
        None, description="Logistic regression on top-1 probability, margin and entropy at the hole."
    )
    attention_plus_confidence: ScorePublic | None = None
    accuracy_gain: IntervalPublic | None = Field(
        None, description="Attention + confidence minus confidence alone: accuracy, paired bootstrap 95%."
    )
    auc_gain: IntervalPublic | None = Field(None, description="The same for ROC AUC.")
    confidence_missing: str | None = Field(None, description="Why the confidence baseline is absent.")


class PredictorBaselines(BaseModel):
    """What the accuracy stands beside: stratified (all rows, majority-class chance), balanced (equal
    classes, chance 0.5, cross-validated again) and exact holes (the stratified predictions on holes that
    already sat on token boundaries)."""

    stratified: RowSetBaselines
    balanced: RowSetBaselines
    exact_holes: RowSetBaselines


class PredictorDetail(PredictorSummary):
    """One predictor with everything its cross-validated evaluation stored. Fields a predictor trained by an
    older version did not store are null (or empty lists)."""

    model_name: str
    clustering_id: int | None = Field(description="The clustering its cluster-id features come from.")
    n_train: int = Field(description="Rows the final model was fitted on.")
    n_correct: int | None = Field(description="Of the evaluated rows, how many were correct.")
    above_chance: bool | None = Field(
        description="The accuracy's 95% interval lies wholly above chance; null without a chance level."
    )
    fold_accuracies: list[float] = Field(description="Accuracy of each cross-validation fold.")
    roc_auc: float | None = Field(description="Out-of-fold ROC AUC.")
    reliability: list[ReliabilityBinPublic] = Field(description="The reliability table (out-of-fold).")
    shuffled_control: ShuffledControlPublic | None
    rounds: list[int] = Field(description="CatBoost rounds per fold (early stopping); empty for other kinds.")
    expected_value: float | None = Field(description="SHAP base value (log-odds) of the final model.")
    parameters: dict[str, Any] = Field(description="Training parameters (label, settings, rounds, seed).")
    head_importance: list[HeadImportancePublic] = Field(
        description="Every head the predictor takes, by mean |SHAP|, largest first."
    )
    baselines: PredictorBaselines | None = Field(
        description="The confidence baseline, balanced and exact-hole figures; null for older predictors."
    )


class TaskHeadsPublic(BaseModel):
    """The heads that matter most for predicting one task's correctness, by the task's most accurate
    predictor that ranks heads (mean |SHAP| in its final model)."""

    task: str | None
    predictor_id: int
    kind: str
    accuracy: float
    accuracy_low: float
    accuracy_high: float
    chance: float | None
    above_chance: bool = Field(
        description="The accuracy's 95% interval lies above chance. When it does not, the ranking below is "
        "not evidence that these heads carry the task's correctness."
    )
    heads: list[HeadImportancePublic] = Field(description="Most important first.")
