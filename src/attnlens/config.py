"""Runtime settings: one `Settings` object, read from `ATTNLENS_*` variables and `.env`.

Model hyperparameters never live here: they travel with the weights in their own config objects.
Nothing in this package reads `Settings` at import time; callers build one (or call `get_settings()`
in an entry point) and pass it down.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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


class APMAESettings(BaseModel):
    """The AP-MAE checkpoint used to embed attention patterns."""

    checkpoint: str = Field(
        "default",
        description="`default` (the checkpoint shipped for the embedded model) or a folder with config.json + model.safetensors.",
    )
    device: DeviceChoice = Field("auto", description="Device for AP-MAE; `auto` picks CUDA when present.")
    batch_size: int = Field(512, description="Head patterns embedded per AP-MAE forward.", gt=0)


class DatabaseSettings(BaseModel):
    """Where metadata lives."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL; default is SQLite at <data_dir>/attnlens.db. PostgreSQL URLs work for shared atlases.",
    )


class IndexSettings(BaseModel):
    """The FAISS index of pattern embeddings."""

    flat_max_vectors: int = Field(
        200_000,
        description="Up to this many vectors the index is exact (flat); beyond it a compressed index is built.",
        gt=0,
    )


class MiningSettings(BaseModel):
    """Turning Java files into completion scenarios."""

    context_tokens: int = Field(256, description="Tokens per scenario window.", ge=16, le=8192)
    max_file_bytes: int = Field(
        1_000_000, description="Corpus files larger than this are skipped (counted as oversized).", gt=0
    )
    seed: int = Field(0, description="Seed for every random choice in mining.")


class APISettings(BaseModel):
    """The HTTP server and its limits."""

    host: str = Field("127.0.0.1", description="Interface to bind. Loopback by default; set 0.0.0.0 deliberately.")
    port: int = Field(8000, description="TCP port of the web app.", ge=1, le=65535)
    max_code_bytes: int = Field(65_536, description="Largest pasted Java source accepted, in bytes.", gt=0)
    max_new_tokens: int = Field(64, description="Most tokens one generation request may ask for.", gt=0)
    max_ablate_heads: int = Field(2048, description="Most heads one ablation request may name.", gt=0)
    max_concurrent_model_calls: int = Field(1, description="Model calls running at once in the worker.", gt=0)
    max_queued_requests: int = Field(
        16, description="Model calls allowed to wait; beyond this the API answers 503 with Retry-After.", ge=0
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
