"""Settings: environment prefix, nested groups, derived paths, and help text for every field."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from attnlens.config import Settings


def test_settings_read_prefixed_and_nested_env(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("ATTNLENS_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("ATTNLENS_MODEL__NAME", "tiny-starcoder2")
    monkeypatch.setenv("ATTNLENS_API__MAX_CODE_BYTES", "1234")
    s = Settings()
    assert s.data_dir == (tmp_path / "d").resolve()
    assert s.model.name == "tiny-starcoder2"
    assert s.api.max_code_bytes == 1234
    assert s.database_url == f"sqlite:///{(tmp_path / 'd' / 'attnlens.db').resolve()}"


def test_defaults_bind_loopback_and_use_embedded_model(tmp_path: Path):
    s = Settings(data_dir=tmp_path)
    assert s.api.host == "127.0.0.1"
    assert s.model.name == "smollm2"
    assert s.models_dir == tmp_path.resolve() / "models"


def test_overrides_revalidate(tmp_path: Path):
    s = Settings(data_dir=tmp_path).with_overrides(data_dir=tmp_path / "x", log_level=None)
    assert s.data_dir == (tmp_path / "x").resolve() and s.log_level == "INFO"


def _fields(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        yield prefix + name, field
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _fields(annotation, prefix + name + ".")


def test_every_setting_has_help_text():
    missing = [name for name, field in _fields(Settings) if not field.description]
    assert missing == []
