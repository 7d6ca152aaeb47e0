"""AP-MAE: a ViT masked autoencoder over attention-pattern images (Katzy et al., TMLR 2026).

Stages follow facebookresearch/mae: `random_masking`, `forward_encoder`, `forward_decoder`, `forward_loss`,
`forward`; `embed` stops after the encoder for the index. Images are the scaled patterns of
`attnlens.apmae.scaling`; `embed` takes raw attention probabilities and scales them itself.

Masking draws only from the lower-triangle patches (row >= column): the strictly upper patches of a causal
pattern are always zero, so they are never encoded, masked, reconstructed or scored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformers import PreTrainedModel

from attnlens.apmae.configuration import APMAEConfig
from attnlens.apmae.layers import Transformer
from attnlens.apmae.scaling import prepare_patterns
from attnlens.errors import CheckpointMismatch

# The seed of the one mask every reconstruction error is measured with (`APMAE.fixed_mask`).
RECONSTRUCTION_MASK_SEED = 0


def lower_patch_ids(grid: int) -> Int[Tensor, " lower"]:
    """Row-major ids of the patches on or below the diagonal of a `grid` x `grid` patch grid."""
    rows, cols = torch.tril_indices(grid, grid)
    return rows * grid + cols


class APMAEEncoder(nn.Module):
    """Patch embedding + learned positions + CLS token + transformer."""

    def __init__(self, config: APMAEConfig) -> None:
        super().__init__()
        dim, ppp = config.encoder_dim, config.pixels_per_patch
        self.patches_to_embedding = nn.Sequential(
            nn.LayerNorm(ppp, eps=config.layer_norm_eps),
            nn.Linear(ppp, dim),
            nn.LayerNorm(dim, eps=config.layer_norm_eps),
        )
        self.pos_embedding = nn.Parameter(torch.randn(1, config.num_patches + 1, dim))  # slot 0: CLS
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.transformer = Transformer(
            dim,
            depth=config.encoder_layers,
            heads=config.encoder_heads,
            dim_head=config.encoder_dim_head,
            mlp_dim=config.encoder_mlp_dim,
            act=config.hidden_act,
            eps=config.layer_norm_eps,
            qkv_bias=config.qkv_bias,
            dropout=config.encoder_dropout,
        )

    def forward(
        self, patches: Float[Tensor, "batch patch pixel"], token_ids: Int[Tensor, "batch n"]
    ) -> Float[Tensor, "batch 1+n dim"]:
        """Encode CLS plus the patches at `token_ids`; output token 0 is the CLS vector."""
        chosen = patches.gather(1, token_ids.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
        tokens = self.patches_to_embedding(chosen) + self.pos_embedding[0, 1:][token_ids]
        cls = (self.cls_token + self.pos_embedding[:, :1]).expand(tokens.shape[0], -1, -1)
        return self.transformer(torch.cat([cls, tokens], dim=1))


class APMAEDecoder(nn.Module):
    """Mask tokens + learned positions + transformer + a linear map back to pixels."""

    def __init__(self, config: APMAEConfig) -> None:
        super().__init__()
        dim = config.decoder_dim
        self.mode = config.decoder_mode
        self.num_patches = config.num_patches
        same = config.encoder_dim == dim
        self.enc_to_dec: nn.Module = nn.Identity() if same else nn.Linear(config.encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.randn(dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, config.num_patches + 1, dim))
        self.to_pixels = nn.Linear(dim, config.pixels_per_patch)
        self.transformer = Transformer(
            dim,
            depth=config.decoder_layers,
            heads=config.decoder_heads,
            dim_head=config.decoder_dim_head,
            mlp_dim=config.decoder_mlp_dim,
            act=config.hidden_act,
            eps=config.layer_norm_eps,
            qkv_bias=config.qkv_bias,
        )

    def forward(
        self,
        latent: Float[Tensor, "batch 1+visible enc_dim"],
        visible_ids: Int[Tensor, "batch visible"],
        masked_ids: Int[Tensor, "batch masked"],
    ) -> Float[Tensor, "batch masked pixel"]:
        x = self.enc_to_dec(latent)
        if self.mode == "paper":
            return self._forward_paper(x[:, :1], visible_ids, masked_ids)
        pos = self.pos_embedding[0, 1:]  # (patch, dim)
        visible = x[:, 1:] + pos[visible_ids]
        masked = self.mask_token + pos[masked_ids]
        cls = x[:, :1] + self.pos_embedding[:, :1]
        # Token order does not matter to an unmasked transformer once positions are added, so the
        # sequence is [CLS, visible..., masked...] and the masked predictions are its last tokens.
        out = self.transformer(torch.cat([cls, visible, masked], dim=1))
        return self.to_pixels(out[:, -masked_ids.shape[1] :])

    def _forward_paper(
        self,
        cls: Float[Tensor, "batch 1 dim"],
        visible_ids: Int[Tensor, "batch visible"],
        masked_ids: Int[Tensor, "batch masked"],
    ) -> Float[Tensor, "batch masked pixel"]:
        # The released decoder scatters the encoded visible tokens and then scatters the mask tokens with
        # the *visible* index, overwriting them: visible slots hold the mask token, masked and upper slots
        # hold zeros, and only the CLS vector carries information from the encoder.
        batch, dim = cls.shape[0], cls.shape[-1]
        grid = cls.new_zeros(batch, self.num_patches, dim)
        index = visible_ids.unsqueeze(-1).expand(-1, -1, dim)
        grid = grid.scatter(1, index, self.mask_token.expand(batch, visible_ids.shape[1], dim))
        out = self.transformer(torch.cat([cls, grid], dim=1) + self.pos_embedding)
        pixels = self.to_pixels(out[:, 1:])  # (batch, patch, pixel)
        return pixels.gather(1, masked_ids.unsqueeze(-1).expand(-1, -1, pixels.shape[-1]))


@dataclass
class APMAEOutput:
    """One masked-reconstruction pass."""

    loss: Float[Tensor, ""]
    pred: Float[Tensor, "batch masked pixel"]
    visible_ids: Int[Tensor, "batch visible"]
    masked_ids: Int[Tensor, "batch masked"]


class APMAEPreTrainedModel(PreTrainedModel):
    """Weight init and the Hugging Face save/load plumbing."""

    config_class = APMAEConfig
    base_model_prefix = "ap_mae"
    main_input_name = "images"
    supports_gradient_checkpointing = False

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # The released init: Xavier-uniform Linear weights with 0.01 biases, N(0, 1) positions and mask
        # token, zero CLS token, default LayerNorm.
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                module.bias.fill_(0.01)
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, APMAEEncoder):
            module.pos_embedding.normal_()
            module.cls_token.zero_()
        elif isinstance(module, APMAEDecoder):
            module.pos_embedding.normal_()
            module.mask_token.normal_()


class APMAE(APMAEPreTrainedModel):
    """The AP-MAE model: `embed` for the index, `forward` for training and evaluation."""

    def __init__(self, config: APMAEConfig) -> None:
        super().__init__(config)
        self.encoder = APMAEEncoder(config)
        self.decoder = APMAEDecoder(config)
        self._lower_ids: dict[torch.device, Tensor] = {}
        self.post_init()

    @property
    def lower_ids(self) -> Int[Tensor, " lower"]:
        """Ids of the lower-triangle patches, on this model's device.

        Derived from the config, not a buffer: `from_pretrained` in transformers 5 builds the model on the
        meta device and leaves non-persistent buffers uninitialised (a loaded model got zeros or garbage
        here), and the released state dicts have no such entry to load it from.
        """
        device = next(self.parameters()).device
        if device not in self._lower_ids:
            self._lower_ids[device] = lower_patch_ids(self.config.grid_size).to(device)
        return self._lower_ids[device]

    # -- images and patches -------------------------------------------------------------------------

    def prepare(self, patterns: Float[Tensor, "batch q k"]) -> Float[Tensor, "batch s s"]:
        """Raw attention probabilities -> scaled images on this model's device (pooling + log-normalise)."""
        return prepare_patterns(
            patterns.to(self.lower_ids.device),
            source_length=self.config.source_length,
            max_length=self.config.max_length,
        )

    def patchify(self, images: Float[Tensor, "batch s s"]) -> Float[Tensor, "batch patch pixel"]:
        size = self.config.max_length
        if images.ndim != 3 or images.shape[-2:] != (size, size):
            raise CheckpointMismatch(
                f"AP-MAE images must be (batch, {size}, {size}); got {tuple(images.shape)}. "
                "Pass raw patterns through APMAE.prepare (or use APMAE.embed)."
            )
        p = self.config.patch_size
        return rearrange(images, "b (h p1) (w p2) -> b (h w) (p1 p2)", p1=p, p2=p)

    def unpatchify(self, patches: Float[Tensor, "batch patch pixel"]) -> Float[Tensor, "batch s s"]:
        p, g = self.config.patch_size, self.config.grid_size
        return rearrange(patches, "b (h w) (p1 p2) -> b (h p1) (w p2)", h=g, w=g, p1=p, p2=p)

    # -- the MAE stages -------------------------------------------------------------------------------

    def random_masking(
        self, batch: int, generator: torch.Generator | None = None
    ) -> tuple[Int[Tensor, "batch visible"], Int[Tensor, "batch masked"]]:
        """A fresh random split of the lower-triangle patches per sample: (visible ids, masked ids)."""
        device = self.lower_ids.device
        noise = torch.rand(
            batch,
            self.lower_ids.numel(),
            generator=generator,
            device=generator.device if generator else device,
        )
        order = noise.to(device).argsort(dim=1)
        shuffled = self.lower_ids[order]  # (batch, lower)
        n = self.config.num_masked
        return shuffled[:, n:], shuffled[:, :n]

    def forward_encoder(
        self, images: Float[Tensor, "batch s s"], visible_ids: Int[Tensor, "batch visible"]
    ) -> Float[Tensor, "batch 1+visible dim"]:
        return self.encoder(self.patchify(images), visible_ids)

    def forward_decoder(
        self,
        latent: Float[Tensor, "batch 1+visible dim"],
        visible_ids: Int[Tensor, "batch visible"],
        masked_ids: Int[Tensor, "batch masked"],
    ) -> Float[Tensor, "batch masked pixel"]:
        return self.decoder(latent, visible_ids, masked_ids)

    def forward_loss(
        self,
        images: Float[Tensor, "batch s s"],
        pred: Float[Tensor, "batch masked pixel"],
        masked_ids: Int[Tensor, "batch masked"],
    ) -> Float[Tensor, ""]:
        """Mean squared error over the pixels of the masked patches only (no per-patch normalisation)."""
        patches = self.patchify(images)
        target = patches.gather(1, masked_ids.unsqueeze(-1).expand(-1, -1, patches.shape[-1]))
        return F.mse_loss(pred.float(), target.float())

    def forward(
        self,
        images: Float[Tensor, "batch s s"],
        visible_ids: Int[Tensor, "batch visible"] | None = None,
        masked_ids: Int[Tensor, "batch masked"] | None = None,
        generator: torch.Generator | None = None,
    ) -> APMAEOutput:
        """Mask (randomly, unless ids are given), encode, decode, score."""
        if visible_ids is None or masked_ids is None:
            visible_ids, masked_ids = self.random_masking(images.shape[0], generator)
        latent = self.forward_encoder(images, visible_ids)
        pred = self.forward_decoder(latent, visible_ids, masked_ids)
        return APMAEOutput(self.forward_loss(images, pred, masked_ids), pred, visible_ids, masked_ids)

    # -- embeddings for the index ---------------------------------------------------------------------

    @torch.inference_mode()
    def embed_images(self, images: Float[Tensor, "batch s s"]) -> Float[Tensor, "batch dim"]:
        """CLS vectors of already-scaled images.

        The encoder sees exactly what it saw in training: CLS plus lower-triangle patches (all of them
        here, none masked). The reference code also feeds the all-zero upper patches at encode time,
        tokens the encoder never met in training; we leave them out.
        """
        ids = self.lower_ids.expand(images.shape[0], -1)
        return self.forward_encoder(images.to(self.lower_ids.device), ids)[:, 0].float()

    @torch.inference_mode()
    def embed(
        self, patterns: Float[Tensor, "batch q k"], batch_size: int | None = None
    ) -> Float[Tensor, "batch dim"]:
        """CLS embeddings of raw attention probabilities (e.g. `capture.attention[i]` reshaped to
        (layer*head, q, k)), scaled inside; float32 on this model's device, `batch_size` at a time."""
        step = batch_size or max(1, patterns.shape[0])
        chunks = [
            self.embed_images(self.prepare(patterns[i : i + step])) for i in range(0, patterns.shape[0], step)
        ]
        return torch.cat(chunks) if chunks else patterns.new_zeros(0, self.config.encoder_dim)

    def fixed_mask(self) -> tuple[Int[Tensor, "1 visible"], Int[Tensor, "1 masked"]]:
        """One split of the lower-triangle patches, the same for every pattern and every run (drawn from
        `RECONSTRUCTION_MASK_SEED`): reconstruction errors made with it compare across patterns."""
        generator = torch.Generator().manual_seed(RECONSTRUCTION_MASK_SEED)
        return self.random_masking(1, generator)

    @torch.inference_mode()
    def embed_with_errors(
        self, patterns: Float[Tensor, "batch q k"], batch_size: int | None = None
    ) -> tuple[Float[Tensor, "batch dim"], Float[Tensor, " batch"]]:
        """`embed`, plus each pattern's reconstruction error: the mean squared error over the pixels of the
        masked patches when the fixed mask (`fixed_mask`) hides them, on the scaled image. A pattern unlike
        those AP-MAE learned from reconstructs worse: the atlas's anomaly signal."""
        step = batch_size or max(1, patterns.shape[0])
        visible, masked = self.fixed_mask()
        embeddings, errors = [], []
        for start in range(0, patterns.shape[0], step):
            images = self.prepare(patterns[start : start + step])
            n = images.shape[0]
            embeddings.append(self.embed_images(images))
            seen, hidden = visible.expand(n, -1), masked.expand(n, -1)
            predicted = self.forward_decoder(self.forward_encoder(images, seen), seen, hidden).float()
            patches = self.patchify(images)
            target = patches.gather(1, hidden.unsqueeze(-1).expand(-1, -1, patches.shape[-1])).float()
            errors.append(((predicted - target) ** 2).mean(dim=(1, 2)))
        if not embeddings:
            return patterns.new_zeros(0, self.config.encoder_dim), patterns.new_zeros(0)
        return torch.cat(embeddings), torch.cat(errors)
