"""`APMAEConfig`: AP-MAE hyperparameters, saved as config.json beside the weights.

Field names follow the released AP-MAE checkpoints (`LaughingLogits/AP-MAE-SC2-3B/7B/15B`), so their
config.json loads here unchanged. Two fields are ours and default to the released behaviour when absent:

- `source_length`: the side of the attention pattern handed in (the target model's window). It is
  average-pooled down to `max_length` (the image the ViT sees) before scaling; the released models use
  256 for both (no pooling).
- `decoder_mode`: `mae` (textbook MAE decoder) or `paper` (the released decoder, whose scatter writes the
  mask token over the visible positions so that only the CLS vector reaches the decoder). A released
  config.json has no such field; `APMAEConfig.released()` and `load_apmae(..., decoder_mode="paper")` set it.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from attnlens.errors import CheckpointMismatch

DECODER_MODES = ("mae", "paper")


class APMAEConfig(PretrainedConfig):
    """Hyperparameters of one AP-MAE (encoder + decoder over attention-pattern images)."""

    model_type = "ap_mae"

    def __init__(
        self,
        max_length: int = 256,
        patch_size: int = 32,
        mask_ratio: float = 0.5,
        decoder_dim: int = 512,
        decoder_layers: int = 8,
        decoder_heads: int = 8,
        decoder_dim_head: int = 64,
        decoder_mlp_dim: int = 2048,
        encoder_dim: int = 512,
        encoder_layers: int = 24,
        encoder_heads: int = 16,
        encoder_dim_head: int = 64,
        encoder_mlp_dim: int = 2048,
        encoder_dropout: float = 0.0,
        encoder_emb_dropout: float = 0.0,
        encoder_pool: str = "cls",
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
        qkv_bias: bool = False,
        source_length: int | None = None,
        decoder_mode: str = "mae",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.max_length = max_length
        self.patch_size = patch_size
        self.mask_ratio = mask_ratio
        self.decoder_dim = decoder_dim
        self.decoder_layers = decoder_layers
        self.decoder_heads = decoder_heads
        self.decoder_dim_head = decoder_dim_head
        self.decoder_mlp_dim = decoder_mlp_dim
        self.encoder_dim = encoder_dim
        self.encoder_layers = encoder_layers
        self.encoder_heads = encoder_heads
        self.encoder_dim_head = encoder_dim_head
        self.encoder_mlp_dim = encoder_mlp_dim
        self.encoder_dropout = encoder_dropout
        self.encoder_emb_dropout = encoder_emb_dropout
        self.encoder_pool = encoder_pool
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.qkv_bias = qkv_bias
        self.source_length = source_length if source_length is not None else max_length
        self.decoder_mode = decoder_mode
        self.validate_shapes()

    def _get_generation_parameters(self) -> dict[str, Any]:
        # transformers refuses to save a config holding generation keywords; `max_length` is one of them,
        # but here it is the image size, named as in the released checkpoints' config.json.
        found = super()._get_generation_parameters()
        found.pop("max_length", None)
        return found

    def validate_shapes(self) -> None:
        """Raise `CheckpointMismatch` for sizes the model cannot be built with."""
        if self.max_length % self.patch_size:
            raise CheckpointMismatch(
                f"max_length {self.max_length} is not a multiple of patch_size {self.patch_size}; pick sizes "
                "that divide."
            )
        if self.source_length % self.max_length:
            raise CheckpointMismatch(
                f"source_length {self.source_length} is not a multiple of max_length {self.max_length}; "
                "the pattern is average-pooled by an integer factor."
            )
        if self.decoder_mode not in DECODER_MODES:
            raise CheckpointMismatch(
                f"decoder_mode {self.decoder_mode!r} is unknown; use one of {DECODER_MODES}."
            )
        if not 0 < self.num_masked < self.num_lower_patches:
            raise CheckpointMismatch(
                f"mask_ratio {self.mask_ratio} masks {self.num_masked} of {self.num_lower_patches} patches; "
                "at least one patch must be masked and one visible."
            )

    @property
    def grid_size(self) -> int:
        """Patches per side of the image."""
        return self.max_length // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid_size**2

    @property
    def num_lower_patches(self) -> int:
        """Patches on or below the diagonal: the only ones a causal pattern can fill."""
        return self.grid_size * (self.grid_size + 1) // 2

    @property
    def num_masked(self) -> int:
        # int() truncation, as in the released code (0.5 x 36 = 18).
        return int(self.mask_ratio * self.num_lower_patches)

    @property
    def pixels_per_patch(self) -> int:
        return self.patch_size**2

    @property
    def pool_factor(self) -> int:
        return self.source_length // self.max_length

    @classmethod
    def released(cls, **overrides: Any) -> APMAEConfig:
        """The configuration of the released AP-MAE-SC2-3B/7B/15B checkpoints (127.1 M parameters), in
        `paper` decoder mode so that their weights behave as they were trained."""
        return cls(**{"decoder_mode": "paper", **overrides})

    @classmethod
    def smollm2_default(cls, **overrides: Any) -> APMAEConfig:
        """The shipped default for SmolLM2-135M: 256-token patterns pooled 4x to 64x64, patch 8 (the same
        8x8 grid as the paper, so 19 training tokens and 37 embedding tokens), a small encoder.
        MODEL_CARD.md beside the checkpoint gives the measurements behind these sizes."""
        sizes: dict[str, Any] = {
            "source_length": 256,
            "max_length": 64,
            "patch_size": 8,
            "encoder_dim": 128,
            "encoder_layers": 6,
            "encoder_heads": 4,
            "encoder_dim_head": 32,
            "encoder_mlp_dim": 512,
            "decoder_dim": 128,
            "decoder_layers": 2,
            "decoder_heads": 4,
            "decoder_dim_head": 32,
            "decoder_mlp_dim": 512,
        }
        return cls(**{**sizes, **overrides})

    @classmethod
    def tiny(cls, **overrides: Any) -> APMAEConfig:
        """A very small model for tests: 32x32 images, patch 8 (4x4 grid, 10 lower-triangle patches)."""
        sizes: dict[str, Any] = {
            "source_length": 32,
            "max_length": 32,
            "patch_size": 8,
            "encoder_dim": 32,
            "encoder_layers": 2,
            "encoder_heads": 2,
            "encoder_dim_head": 16,
            "encoder_mlp_dim": 64,
            "decoder_dim": 32,
            "decoder_layers": 1,
            "decoder_heads": 2,
            "decoder_dim_head": 16,
            "decoder_mlp_dim": 64,
        }
        return cls(**{**sizes, **overrides})
