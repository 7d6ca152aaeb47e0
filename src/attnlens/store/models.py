"""The ORM tables. Singular lower_snake table names, `<table>_id` foreign keys, `_at` timestamps in UTC.

What is deliberately not here: raw attention patterns (one 256x256 head is 256 KiB; an atlas would be
terabytes). A head pattern row keeps its AP-MAE embedding (float16 bytes, the source of truth the FAISS
index is rebuilt from), a lower-triangle thumbnail and cheap statistics; the full pattern of one inference
is recomputed on demand. Binary columns are decoded by `attnlens.store.codecs`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from attnlens.heads import HeadRef
from attnlens.store.base import Base, UTCDateTime, utc_now

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
# Where an inference came from: `mined` rows make up the atlas (clustering, maps, predictors, task counts);
# `pasted` rows are code a user pasted and chose to keep. Analyses never read pasted rows, and only they
# can be deleted.
MINED, PASTED = "mined", "pasted"
INFERENCE_SOURCES = (MINED, PASTED)
# The corpus of the files pasted code makes, and the alignment of its scenarios (a paste identical to a mined
# file shares that file's row, so its scenarios are told apart by their alignment).
PASTED_CORPUS = "pasted"
PASTED_ALIGNMENT = "pasted"


class CorpusFile(Base):
    """One source file of a corpus, identified by the hash of its bytes."""

    __tablename__ = "corpus_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    corpus: Mapped[str] = mapped_column(String(200))  # e.g. "jdk17" or a folder name
    path: Mapped[str] = mapped_column(String(1000))  # path inside the corpus
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    n_bytes: Mapped[int | None] = mapped_column(Integer)  # NULL when the miner did not report the size
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class Scenario(Base):
    """A completion point in a corpus file, tokenized for one model (token ids depend on the tokenizer)."""

    __tablename__ = "scenario"
    __table_args__ = (
        # What makes a scenario "the same" (save_scenarios relies on this to be idempotent).
        UniqueConstraint(
            "corpus_file_id", "model_name", "task", "hole_start", "hole_end", "mode", "context_tokens"
        ),
        Index(None, "model_name", "task"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    corpus_file_id: Mapped[int] = mapped_column(ForeignKey("corpus_file.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(64))
    node_type: Mapped[str] = mapped_column(String(100))
    mode: Mapped[str] = mapped_column(String(8))  # "fim" or "l2r"
    hole_start: Mapped[int] = mapped_column(Integer)  # byte offsets into the file
    hole_end: Mapped[int] = mapped_column(Integer)
    target_text: Mapped[str] = mapped_column(Text)
    target_ids: Mapped[bytes] = mapped_column(LargeBinary)  # int32 little-endian (codecs.pack_token_ids)
    prompt_ids: Mapped[bytes] = mapped_column(LargeBinary)  # int32 little-endian, context_tokens long
    context_tokens: Mapped[int] = mapped_column(Integer)
    n_prefix_tokens: Mapped[int] = mapped_column(Integer)
    n_suffix_tokens: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    alignment: Mapped[str] = mapped_column(String(200))  # how the hole was moved to a token boundary
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)

    corpus_file: Mapped[CorpusFile] = relationship()


class Inference(Base):
    """One run of a target model on a prompt: its completion and whether it was right."""

    __tablename__ = "inference"
    # One inference per scenario and model: greedy decoding is deterministic, and resumable atlas builds
    # skip scenarios that already have one. Pasted code has a scenario of corpus `pasted` (rows written
    # before that had none; NULLs never collide).
    __table_args__ = (
        UniqueConstraint("scenario_id", "model_name"),
        Index(None, "model_name"),
        CheckConstraint("source IN ('mined', 'pasted')", name="source"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int | None] = mapped_column(ForeignKey("scenario.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(200))
    # The scenario's prompt_ids when NULL; set for pasted code (no scenario).
    prompt_ids: Mapped[bytes | None] = mapped_column(LargeBinary)
    prompt_text: Mapped[str | None] = mapped_column(Text)
    completion_text: Mapped[str] = mapped_column(Text, default="")
    completion_ids: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    first_token_correct: Mapped[bool | None] = mapped_column(Boolean)  # NULL when there is no ground truth
    span_correct: Mapped[bool | None] = mapped_column(Boolean)
    expected_token_prob: Mapped[float | None] = mapped_column(Float)  # p(first expected token) at the hole
    # The model's own confidence at the hole (`mining.hole_confidence`): the baseline attention predictors
    # are measured against. NULL for rows built before it was stored (migration 0003).
    top1_prob: Mapped[float | None] = mapped_column(Float)
    top1_margin: Mapped[float | None] = mapped_column(Float)  # top-1 minus top-2 probability
    next_token_entropy: Mapped[float | None] = mapped_column(Float)  # nats
    embedder: Mapped[str | None] = mapped_column(String(500))  # AP-MAE checkpoint behind the embeddings
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    # `mined` (part of the atlas) or `pasted` (kept apart from every analysis; deletable).
    source: Mapped[str] = mapped_column(String(8), default=MINED, server_default=MINED)
    # Which definitions (`contracts.head_scores.HEAD_SCORES_VERSION`) its patterns' relational scores
    # follow; NULL: not computed yet (rows built before migration 0004), for the backfill job to fill.
    head_scores_version: Mapped[int | None] = mapped_column(SmallInteger)

    scenario: Mapped[Scenario | None] = relationship()
    head_patterns: Mapped[list[HeadPattern]] = relationship(
        back_populates="inference", cascade="all, delete-orphan", passive_deletes=True
    )


class HeadPattern(Base):
    """One head's attention pattern in one inference. `id` is also its FAISS id."""

    __tablename__ = "head_pattern"
    __table_args__ = (UniqueConstraint("inference_id", "layer", "head"), Index(None, "layer", "head"))

    id: Mapped[int] = mapped_column(primary_key=True)
    inference_id: Mapped[int] = mapped_column(ForeignKey("inference.id", ondelete="CASCADE"))
    layer: Mapped[int] = mapped_column(SmallInteger)
    head: Mapped[int] = mapped_column(SmallInteger)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float16 little-endian (codecs.pack_embedding)
    thumbnail: Mapped[bytes] = mapped_column(LargeBinary)  # lower triangle of a uint8 square, row by row
    thumbnail_size: Mapped[int] = mapped_column(SmallInteger)  # side of that square
    entropy: Mapped[float] = mapped_column(Float)
    diagonal_mass: Mapped[float] = mapped_column(Float)
    previous_token_mass: Mapped[float] = mapped_column(Float)
    first_token_mass: Mapped[float] = mapped_column(Float)
    local_mass: Mapped[float] = mapped_column(Float)
    # Relational head-type scores: NULL where the input has no such token pairs (or, when the inference's
    # head_scores_version is NULL, where they were not computed yet).
    duplicate_token_mass: Mapped[float | None] = mapped_column(Float)
    induction_mass: Mapped[float | None] = mapped_column(Float)
    bracket_mass: Mapped[float | None] = mapped_column(Float)
    same_identifier_mass: Mapped[float | None] = mapped_column(Float)
    declaration_mass: Mapped[float | None] = mapped_column(Float)
    callee_mass: Mapped[float | None] = mapped_column(Float)
    # AP-MAE's masked-patch MSE with one fixed mask (`APMAE.embed_with_errors`): high = unlike what AP-MAE
    # learned from. NULL for rows built before migration 0004 until the backfill job fills it.
    reconstruction_error: Mapped[float | None] = mapped_column(Float)

    inference: Mapped[Inference] = relationship(back_populates="head_patterns")

    @property
    def head_ref(self) -> HeadRef:
        return HeadRef(self.layer, self.head)


class Clustering(Base):
    """One clustering run over the head patterns (each head clustered on its own)."""

    __tablename__ = "clustering"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    embedder: Mapped[str | None] = mapped_column(String(500))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class Cluster(Base):
    """One cluster of one head in a clustering; label -1 summarises that head's noise points."""

    __tablename__ = "cluster"
    __table_args__ = (UniqueConstraint("clustering_id", "layer", "head", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clustering_id: Mapped[int] = mapped_column(ForeignKey("clustering.id", ondelete="CASCADE"))
    layer: Mapped[int] = mapped_column(SmallInteger)
    head: Mapped[int] = mapped_column(SmallInteger)
    label: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    medoid_head_pattern_id: Mapped[int | None] = mapped_column(
        ForeignKey("head_pattern.id", ondelete="SET NULL")
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # name -> value -> count


class ClusterAssignment(Base):
    """The cluster label of one head pattern in one clustering (fitted, or assigned by a kNN vote)."""

    __tablename__ = "cluster_assignment"
    __table_args__ = (Index(None, "head_pattern_id"),)

    clustering_id: Mapped[int] = mapped_column(
        ForeignKey("clustering.id", ondelete="CASCADE"), primary_key=True
    )
    head_pattern_id: Mapped[int] = mapped_column(
        ForeignKey("head_pattern.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[int] = mapped_column(Integer)
    vote_share: Mapped[float | None] = mapped_column(Float)  # NULL when the label came from the fit itself


class PatternMap(Base):
    """One 2-D map (UMAP) of head-pattern embeddings."""

    __tablename__ = "pattern_map"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class MapPoint(Base):
    """Where one head pattern lies on one map."""

    __tablename__ = "map_point"
    __table_args__ = (Index(None, "head_pattern_id"),)

    pattern_map_id: Mapped[int] = mapped_column(
        ForeignKey("pattern_map.id", ondelete="CASCADE"), primary_key=True
    )
    head_pattern_id: Mapped[int] = mapped_column(
        ForeignKey("head_pattern.id", ondelete="CASCADE"), primary_key=True
    )
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    fitted: Mapped[bool] = mapped_column(Boolean)  # in the sample UMAP was fitted on (else transformed)


class FamilyRun(Base):
    """One global clustering of a model's head patterns into pattern families (all heads together)."""

    __tablename__ = "family_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    embedder: Mapped[str | None] = mapped_column(String(500))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # settings; "complete" when done
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class PatternFamily(Base):
    """One family of a run, with its summary (score medians and labels, where it occurs, correctness of its
    members' completions, example pattern ids); noise (label -1) has no row."""

    __tablename__ = "pattern_family"
    __table_args__ = (UniqueConstraint("family_run_id", "label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    family_run_id: Mapped[int] = mapped_column(ForeignKey("family_run.id", ondelete="CASCADE"))
    label: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    medoid_head_pattern_id: Mapped[int | None] = mapped_column(
        ForeignKey("head_pattern.id", ondelete="SET NULL")
    )
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class FamilyAssignment(Base):
    """The family of one head pattern in one run (-1: noise), fitted or assigned by a kNN vote."""

    __tablename__ = "family_assignment"
    __table_args__ = (Index(None, "head_pattern_id"),)

    family_run_id: Mapped[int] = mapped_column(
        ForeignKey("family_run.id", ondelete="CASCADE"), primary_key=True
    )
    head_pattern_id: Mapped[int] = mapped_column(
        ForeignKey("head_pattern.id", ondelete="CASCADE"), primary_key=True
    )
    label: Mapped[int] = mapped_column(Integer)
    vote_share: Mapped[float | None] = mapped_column(Float)  # NULL when the label came from the fit itself


class Predictor(Base):
    """A trained correctness predictor, serialised (the analysis code owns the format of `blob`)."""

    __tablename__ = "predictor"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100))  # e.g. "catboost-clusters", "pca-logistic"
    model_name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str | None] = mapped_column(String(64))  # NULL: trained on every task
    clustering_id: Mapped[int | None] = mapped_column(ForeignKey("clustering.id", ondelete="SET NULL"))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    n_train: Mapped[int] = mapped_column(Integer)
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class PredictorEvaluation(Base):
    """Cross-validated quality of a predictor: accuracy with its 95% interval, Brier score, calibration."""

    __tablename__ = "predictor_evaluation"

    id: Mapped[int] = mapped_column(primary_key=True)
    predictor_id: Mapped[int] = mapped_column(ForeignKey("predictor.id", ondelete="CASCADE"))
    n_rows: Mapped[int] = mapped_column(Integer)
    folds: Mapped[int] = mapped_column(Integer)
    accuracy: Mapped[float] = mapped_column(Float)
    accuracy_low: Mapped[float] = mapped_column(Float)
    accuracy_high: Mapped[float] = mapped_column(Float)
    brier: Mapped[float | None] = mapped_column(Float)
    calibration_error: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any]] = mapped_column(
        JSON, default=dict
    )  # reliability bins, per-fold, controls
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class Job(Base):
    """A long task (mining, atlas build, clustering...) that workers claim, report on and finish.

    Use the helpers in `attnlens.store.jobs`; they are safe with several worker processes.
    """

    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint("state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="state"),
        Index(None, "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker: Mapped[str | None] = mapped_column(String(200))  # who holds it while running
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class HeadNote(Base):
    """What a person says about a head, a cluster or a family: a label, a note, or an entry imported from a
    catalogue of known heads (with its source). Kept apart from the computed labels, never mixed with them.
    A cluster's or family's target is only meaningful within its clustering or family run (`scope_id`)."""

    __tablename__ = "head_note"
    __table_args__ = (
        CheckConstraint("kind IN ('head', 'cluster', 'family')", name="kind"),
        CheckConstraint("origin IN ('user', 'catalogue')", name="origin"),
        Index(None, "model_name", "kind", "target"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))  # head | cluster | family
    target: Mapped[str] = mapped_column(String(64))  # L3H5; L3H5 cluster 2 -> "L3H5:2"; family 4 -> "4"
    scope_id: Mapped[int | None] = mapped_column(Integer)  # the clustering or family run of a cluster/family
    label: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(String(10))  # user | catalogue
    source_url: Mapped[str | None] = mapped_column(String(1000))  # where a catalogue entry comes from
    author: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
