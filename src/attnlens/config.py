"""Runtime settings: one `Settings` object, read from `ATTNLENS_*` variables and `.env`.

Model hyperparameters never live here: they travel with the weights in their own config objects.
Nothing in this package reads `Settings` at import time; callers build one (or call `get_settings()`
in an entry point) and pass it down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from attnlens.contracts.jobs import RESERVED_CORPUS_NAMES

DeviceChoice = Literal["auto", "cpu", "cuda"]
DtypeChoice = Literal["auto", "float32", "bfloat16", "float16"]


class ModelSettings(BaseModel):
    """The target language model whose attention we study."""

    name: str = Field(
        "smollm2",
        description="Model preset (see `attnlens models`), Hugging Face id, or local folder.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for hub ids.")
    device: DeviceChoice = Field("auto", description="`auto` picks CUDA when present, else CPU.")
    dtype: DtypeChoice = Field("auto", description="`auto` is bfloat16 on CUDA and float32 on CPU.")
    attention_tolerance: float = Field(
        2e-3,
        description="Largest allowed |row sum - 1| of a captured attention row (fp32; bf16 uses 10x).",
        gt=0,
    )
    allow_pickle_weights: bool = Field(
        False,
        description="Load a model whose weights exist only as pickle files (pytorch_model.bin). Off: "
        "safetensors only, since unpickling a file can run code. Turn on only for weights you trust.",
    )


class APMAESettings(BaseModel):
    """The AP-MAE checkpoint used to embed attention patterns."""

    checkpoint: str = Field(
        "default",
        description="`default` (the checkpoint shipped for the embedded model), a folder with config.json "
        "+ model.safetensors, or a Hugging Face hub id such as `LaughingLogits/AP-MAE-SC2-3B` (a released "
        "checkpoint, loaded with the `paper` decoder it was trained with; downloaded once into "
        "<data_dir>/models/hub, then read from there, offline too).",
    )
    allow_pickle_weights: bool = Field(
        False,
        description="Load an AP-MAE checkpoint whose weights exist only as pickle files (pytorch_model.bin). "
        "Off: safetensors only, since unpickling a file can run code. Turn on only for weights you trust.",
    )
    device: DeviceChoice = Field("auto", description="Device for AP-MAE; `auto` picks CUDA when present.")
    batch_size: int = Field(512, description="Head patterns embedded per AP-MAE forward.", gt=0)


class DatabaseSettings(BaseModel):
    """Where metadata lives."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default is SQLite at <data_dir>/attnlens.db. PostgreSQL URLs work for "
        "shared atlases.",
    )
    job_stale_after_s: float = Field(
        300.0,
        description="A running job whose worker sent no heartbeat for this long goes back to the queue.",
        gt=0,
    )


class IndexSettings(BaseModel):
    """The FAISS index of pattern embeddings."""

    flat_max_vectors: int = Field(
        200_000,
        description="Up to this many vectors the index is exact (flat); beyond it a compressed index is "
        "built.",
        gt=0,
    )
    metric: Literal["cosine", "l2"] = Field(
        "cosine", description="Similarity of embeddings: cosine (unit vectors, inner product) or Euclidean."
    )
    ivf_lists: int | None = Field(
        None,
        description="Inverted lists of the compressed index; default about 4*sqrt(vectors), a power of 2.",
        gt=0,
    )
    pq_bytes: int = Field(
        32,
        description="Bytes per vector in the compressed index's product quantizer (must divide the "
        "dimension).",
        gt=0,
    )
    nprobe: int = Field(
        16, description="Lists the compressed index scans per query (more: slower, better recall).", gt=0
    )
    rerank_factor: int = Field(
        5,
        description="The compressed index returns k times this many candidates, re-ranked exactly with the "
        "database's embeddings.",
        ge=1,
    )
    train_sample: int = Field(
        65_536, description="Vectors the compressed index is trained on (a seeded random sample).", gt=0
    )
    search_threads: int = Field(
        1,
        description="FAISS threads per search. One query is latency-bound; more threads on a busy CPU made "
        "it slower.",
        ge=1,
    )
    build_threads: int = Field(
        1,
        description="FAISS threads for training and filling the index. Raise it on a machine of your own: on "
        "a shared 2-core CPU, 2 OpenMP threads made training 14x slower than 1.",
        ge=1,
    )
    delta_max_vectors: int = Field(
        10_000,
        description="New vectors (a paste, a resumed build) go to a small exact delta index per embedding "
        "space, searched with the main one; beyond this many the delta is folded into the main index "
        "(which rewrites it). Larger: fewer main rewrites, a larger file for every paste to write.",
        gt=0,
    )
    overfetch_min_fraction: float = Field(
        0.03,
        description="On a compressed index, a search filter admitting at least this fraction of all patterns "
        "is applied by over-fetching and discarding, a narrower one by a FAISS id selector (flat indexes "
        "always use the selector).",
        gt=0,
        le=1,
    )


class MiningSettings(BaseModel):
    """Turning Java files into completion scenarios."""

    context_tokens: int = Field(256, description="Tokens per scenario window.", ge=16, le=8192)
    max_file_bytes: int = Field(
        1_000_000, description="Corpus files larger than this are skipped (counted as oversized).", gt=0
    )
    seed: int = Field(0, description="Seed for every random choice in mining.")
    per_task: int = Field(1000, description="Scenarios mined per task (the paper used 1000).", ge=0)
    max_target_tokens: int = Field(
        64,
        description="Candidate targets longer than this many tokens (long text blocks) are not used.",
        gt=0,
    )
    jsonl_field: str = Field("content", description="Field holding the source text in a JSONL corpus.")
    hf_config: str | None = Field(
        None, description="Config name of a Hugging Face dataset corpus (e.g. Stackless_Java_V2)."
    )
    hf_split: str = Field(
        "test", description="Split of a Hugging Face dataset corpus (the paper analysed `test`)."
    )
    # The HTTP API takes corpora by name only (a path would let any client walk or probe the server's
    # disk); the command line still takes paths, since its user owns the machine.
    corpora: dict[str, str] = Field(
        default_factory=dict,
        description="Corpora the HTTP API accepts by name: name -> location (folder of .java files, "
        '.zip/.jar, .jsonl or `hf:<dataset>`), as JSON in the environment, e.g. {"jdk": "/usr/lib/jvm/'
        "openjdk-17/lib/src.zip\"}. `demo` (atlas.demo_corpus) and `atlas` (the latest build's corpus) "
        "are always registered and cannot be used here.",
    )
    corpus_root: Path | None = Field(
        None,
        description="Folder whose contents the HTTP API also accepts as corpora by path (checked after "
        "resolving symlinks and `..`; relative paths are taken from it). Unset: names only.",
    )
    allow_hf_datasets: bool = Field(
        False,
        description="Let HTTP requests use `hf:<dataset>` corpora (by name or directly), which makes the "
        "server download the dataset. The command line is not limited by this.",
    )

    @field_validator("corpora")
    @classmethod
    def _no_reserved_names(cls, value: dict[str, str]) -> dict[str, str]:
        # `demo` and `atlas` always mean the demo corpus and the latest build's: a configured corpus of that
        # name would be silently ignored, so say so at start-up instead.
        taken = sorted(set(value) & set(RESERVED_CORPUS_NAMES))
        if taken:
            raise ValueError(
                f"{' and '.join(RESERVED_CORPUS_NAMES)} are reserved corpus names (`demo` is "
                f"atlas.demo_corpus, `atlas` the latest build's corpus); register {', '.join(taken)} under "
                "another name."
            )
        return value


MIN_TOKEN_CHARS = 16


class APISettings(BaseModel):
    """The HTTP server and its limits."""

    host: str = Field(
        "127.0.0.1", description="Interface to bind. Loopback by default; set 0.0.0.0 deliberately."
    )
    port: int = Field(8000, description="TCP port of the web app.", ge=1, le=65535)
    max_code_bytes: int = Field(65_536, description="Largest pasted Java source accepted, in bytes.", gt=0)
    max_body_bytes: int = Field(
        4_194_304,
        description="Largest request body, in bytes, refused with 413 before it is parsed (a 256 x 256 "
        "attention matrix as JSON is about 1.4 MB).",
        gt=0,
    )
    max_new_tokens: int = Field(64, description="Most tokens one generation request may ask for.", gt=0)
    max_ablate_heads: int = Field(2048, description="Most heads one ablation request may name.", gt=0)
    max_concurrent_model_calls: int = Field(1, description="Model calls running at once in the worker.", gt=0)
    worker_url: str | None = Field(
        None,
        description="URL of a separate worker service (split deployment, e.g. http://worker:8001); unset: "
        "the worker runs in this process.",
    )
    frontend_dir: Path | None = Field(
        None, description="Folder of the static pages; default: frontend/static of this source tree."
    )
    max_queued_requests: int = Field(
        16, description="Model calls allowed to wait; beyond this the API answers 503 with Retry-After.", ge=0
    )
    token: SecretStr | None = Field(
        None,
        description="Bearer token that every /api and /worker request must carry (`Authorization: Bearer "
        "<token>`), at least 16 characters (`python -c 'import secrets; print(secrets.token_urlsafe(32))'`). "
        "Required to listen beyond loopback; the split deployment's API and worker share it.",
    )
    insecure_no_token: bool = Field(
        False,
        description="Listen beyond loopback without a token. Anyone who reaches the port can read the atlas "
        "and run the model; logged as a warning on every start. For a trusted, closed network only.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from their pages (CORS), e.g. "
        "https://lab.example.org. Empty (the default): none; the app's own pages need no CORS.",
        max_length=64,
    )

    @property
    def bearer_token(self) -> str | None:
        """The token's value (None: none set), for the code that checks or sends it."""
        return self.token.get_secret_value() if self.token is not None else None

    @field_validator("token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"api.token must be at least {MIN_TOKEN_CHARS} characters; make one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value


class AnalysisSettings(BaseModel):
    """Clustering, the cluster map, cluster assignment, correctness predictors and ablation statistics.

    Clustering defaults are the paper's per-head recipe (UMAP 8-d cosine, then HDBSCAN).
    """

    seed: int = Field(
        0, description="Seed for every random choice in analysis (UMAP, jitter, folds, bootstrap)."
    )
    umap_components: int = Field(
        8, description="Dimensions UMAP reduces each head's embeddings to before HDBSCAN.", ge=2
    )
    umap_neighbors: int = Field(20, description="UMAP n_neighbors for per-head clustering.", ge=2)
    umap_min_dist: float = Field(0.05, description="UMAP min_dist for per-head clustering.", ge=0)
    umap_metric: str = Field(
        "cosine", description="UMAP metric on the raw embeddings (per head and for the map)."
    )
    hdbscan_min_samples: int = Field(20, description="HDBSCAN min_samples (density smoothing).", ge=1)
    hdbscan_min_cluster_size: int = Field(
        25, description="HDBSCAN min_cluster_size: smaller groups become noise.", ge=2
    )
    hdbscan_allow_single_cluster: bool = Field(
        True, description="Let HDBSCAN return one cluster for a head whose patterns are all alike."
    )
    dedup_jitter: float = Field(
        1e-3,
        description="Std of the Gaussian jitter added to duplicate embeddings (grows x5 per retry, 3 "
        "retries).",
        gt=0,
    )
    map_fit_sample: int = Field(
        20_000,
        description="Points the 2-D map's UMAP is fitted on; the rest are placed with transform.",
        ge=10,
    )
    map_neighbors: int = Field(15, description="UMAP n_neighbors for the 2-D map.", ge=2)
    map_min_dist: float = Field(0.1, description="UMAP min_dist for the 2-D map.", ge=0)
    # Pattern families: one UMAP + HDBSCAN over all heads' patterns (the per-head UMAP settings and
    # hdbscan_min_samples), fitted on a seeded sample; every other pattern joins by the knn_k vote.
    family_fit_sample: int = Field(
        20_000, description="Patterns the family clustering is fitted on; the rest join by kNN vote.", ge=10
    )
    family_min_cluster_size: int = Field(
        100, description="HDBSCAN min_cluster_size of families (in the fit sample): smaller is noise.", ge=2
    )
    family_examples: int = Field(
        6, description="Example patterns kept per family: its medoid and the members nearest it.", ge=3, le=24
    )
    knn_k: int = Field(
        15, description="Neighbours that vote when assigning a new pattern to a head's cluster.", ge=1
    )
    predictor_iterations: int = Field(
        1000, description="Most CatBoost boosting rounds (early stopping usually ends sooner).", ge=1
    )
    predictor_depth: int = Field(6, description="CatBoost tree depth.", ge=1, le=16)
    predictor_learning_rate: float = Field(0.1, description="CatBoost learning rate.", gt=0)
    predictor_early_stopping: int = Field(
        25,
        description="Rounds without improvement on the inner validation split before CatBoost stops.",
        ge=1,
    )
    predictor_eval_fraction: float = Field(
        0.1, description="Share of each training fold held out (stratified) for early stopping.", gt=0, lt=0.5
    )
    predictor_threads: int = Field(2, description="Threads CatBoost may use.", ge=1)
    predictor_pca_components: int = Field(
        4, description="Principal components kept per head by the embedding-based predictor.", ge=1
    )
    predictor_logreg_c_grid: list[float] = Field(
        [1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        description="Inverse L2 strengths C the embedding predictor's logistic regression picks from (inner "
        "3-fold CV, log-loss).",
    )
    cv_folds: int = Field(5, description="Stratified cross-validation folds for predictor evaluation.", ge=2)
    calibration_bins: int = Field(
        10, description="Equal-width probability bins of the reliability table.", ge=2
    )
    bootstrap_resamples: int = Field(
        2000, description="Bootstrap resamples behind each 95% interval.", ge=100
    )
    neutral_shap_eps: float = Field(
        1e-5, description="Heads with |mean SHAP| at most this are `neutral` in ablation experiments.", ge=0
    )


class AtlasSettings(BaseModel):
    """Building atlases, including the demo atlas `make run` builds in the background."""

    batch_size: int = Field(
        4, description="Scenarios per target-model forward pass in a build.", ge=1, le=256
    )
    thumbnail_size: int = Field(
        32, description="Side of each stored head thumbnail (uint8, lower triangle kept).", ge=4, le=128
    )
    index_save_every: int = Field(
        25,
        description="Save the FAISS index after this many build batches (the database is always ahead; a "
        "restart syncs).",
        ge=1,
    )
    demo_corpus: str = Field(
        "/usr/lib/jvm/openjdk-17/lib/src.zip",
        description="Corpus of the demo atlas built on first `attnlens serve` (the JDK sources from "
        "Debian's openjdk-17-source).",
    )
    demo_per_task: int = Field(
        40,
        description="Scenarios per task in the demo atlas (enough rows per task for the correctness "
        "predictors).",
        ge=0,
    )
    demo_tasks: str = Field("all", description="Tasks of the demo atlas: `all` or comma-separated names.")
    build_demo: bool = Field(
        True, description="Whether `attnlens serve` queues the demo atlas build when the atlas is empty."
    )


class Settings(BaseSettings):
    """Every runtime setting of attnlens. Environment: `ATTNLENS_<FIELD>` or `ATTNLENS_<GROUP>__<FIELD>`."""

    model_config = SettingsConfigDict(
        env_prefix="ATTNLENS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    data_dir: Path = Field(
        Path("data"), description="Holds the database, the index, model caches and checkpoints."
    )
    log_level: str = Field("INFO", description="Python logging level name.")
    model: ModelSettings = Field(default_factory=ModelSettings, description="Target model.")
    apmae: APMAESettings = Field(default_factory=APMAESettings, description="AP-MAE embedder.")
    db: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Metadata store.")
    index: IndexSettings = Field(default_factory=IndexSettings, description="FAISS index.")
    mining: MiningSettings = Field(default_factory=MiningSettings, description="Scenario mining.")
    api: APISettings = Field(default_factory=APISettings, description="HTTP server and request limits.")
    atlas: AtlasSettings = Field(
        default_factory=AtlasSettings, description="Atlas builds and the demo atlas."
    )
    analysis: AnalysisSettings = Field(
        default_factory=AnalysisSettings,
        description="Clustering, cluster map, predictors, ablation statistics.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL in force (SQLite under the data dir unless `db.url` is set)."""
        return self.db.url or f"sqlite:///{self.data_dir / 'attnlens.db'}"

    @property
    def models_dir(self) -> Path:
        """Converted model caches (for example SmolLM2 as safetensors) and hub downloads."""
        return self.data_dir / "models"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def checkpoints_dir(self) -> Path:
        return self.data_dir / "checkpoints"

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with some top-level fields replaced and validated again (CLI flags use this)."""
        merged = self.model_dump()
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return Settings.model_validate(merged)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, for entry points only; library code takes `Settings` as an argument."""
    return Settings()
