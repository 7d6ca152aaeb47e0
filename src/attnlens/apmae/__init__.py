"""AP-MAE: the masked autoencoder over attention-pattern images, its training and evaluation."""

from attnlens.apmae.configuration import APMAEConfig
from attnlens.apmae.model import APMAE, APMAEOutput

__all__ = ["APMAE", "APMAEConfig", "APMAEOutput"]
