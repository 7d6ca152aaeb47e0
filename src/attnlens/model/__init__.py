"""The target-model layer: loading, attention capture with validity checks, generation, head ablation."""

from attnlens.model.target import Capture, FimTokens, Generation, ModelInfo, TargetModel

__all__ = ["Capture", "FimTokens", "Generation", "ModelInfo", "TargetModel"]
