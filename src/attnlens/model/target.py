"""`TargetModel`: the one place that owns a target LLM's attention capture, generation and head ablation."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from jaxtyping import Float

from attnlens.contracts.models import PRESETS, FimTokens, fim_tokens_from_vocab
from attnlens.errors import AttentionUnavailable, InvalidInput
from attnlens.heads import HeadRef
from attnlens.model.ablation import ablate_heads
from attnlens.model.decoding import continue_greedy, generate_from_draft
from attnlens.model.loading import load_hf, resolve_device, resolve_dtype
from attnlens.model.tiny import TINY_SEED
from attnlens.model.validity import check_attention

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from attnlens.config import Settings

log = logging.getLogger(__name__)

__all__ = ["Capture", "FimTokens", "Generation", "ModelInfo", "TargetModel"]


@dataclass(frozen=True)
class ModelInfo:
    """What the rest of attnlens needs to know about a target model."""

    name: str
    architecture: str
    n_layers: int
    n_heads: int  # query heads per layer; one attention pattern each
    n_kv_heads: int
    head_dim: int
    context_length: int
    vocab_size: int
    n_params: int
    device: str
    dtype: str
    bos_id: int | None
    eos_ids: tuple[int, ...]
    pad_id: int
    fim: FimTokens | None = None
    attn_implementation: str = "eager"
    family: str | None = None  # a registered model family (attnlens.contracts.models), None if unknown
    # Where the weights come from, for people: `weights_of(name)`. The embedded model is a dequantised
    # 4-bit GGUF, not the full-precision release, and every place that names it says so.
    weights: str = ""

    @property
    def n_patterns(self) -> int:
        return self.n_layers * self.n_heads

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["n_patterns"] = self.n_patterns
        data["supports_fim"] = self.fim is not None
        return data


@dataclass
class Capture:
    """One batched forward pass. Sequences are right-padded; `lengths` says how much of each is real."""

    attention: Float[torch.Tensor, "batch layer head q k"]
    last_logits: Float[torch.Tensor, "batch vocab"]  # at each sequence's last real token, float32
    lengths: list[int]
    logits: Float[torch.Tensor, "batch q vocab"] | None = None  # only when asked for
    # Greedy continuations (new token ids) when `continue_tokens` was asked for; empty otherwise.
    continuations: list[list[int]] = field(default_factory=list)

    def pattern(self, index: int) -> Float[torch.Tensor, "layer head q k"]:
        """The attention of sequence `index` over its real tokens only."""
        n = self.lengths[index]
        return self.attention[index, :, :, :n, :n]


@dataclass
class Generation:
    """A greedy completion."""

    prompt_ids: list[int]
    new_ids: list[int]
    text: str
    first_logits: Float[torch.Tensor, " vocab"]  # next-token logits at the hole, float32 on CPU
    stopped_by: str  # "stop_token" or "max_new_tokens"
    ablated: frozenset[HeadRef] = field(default_factory=frozenset)


class TargetModel:
    """A causal LM with eager attention, wrapped for capture, generation and ablation."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        name: str,
        attention_tolerance: float = 2e-3,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = _describe(model, tokenizer, name)
        # bf16 softmax rows sum to 1 only to about 1e-2.
        low_precision = self.info.dtype in ("torch.bfloat16", "torch.float16")
        self.attention_tolerance = attention_tolerance * (10 if low_precision else 1)

    @classmethod
    def load(
        cls,
        spec: str,
        *,
        models_dir: Path,
        device: str = "auto",
        dtype: str = "auto",
        revision: str | None = None,
        attention_tolerance: float = 2e-3,
        allow_pickle_weights: bool = False,
    ) -> TargetModel:
        """Load a preset (`smollm2`, `tiny-starcoder2`, `starcoder2-3b`...), hub id or local folder,
        always with eager attention (the only implementation that returns attention probabilities), from
        safetensors only unless `allow_pickle_weights`."""
        torch_device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, torch_device)
        model, tokenizer, name = load_hf(
            spec, models_dir=models_dir, revision=revision, dtype=torch_dtype,
            allow_pickle_weights=allow_pickle_weights,
        )  # fmt: skip
        # functools.wraps on PreTrainedModel.to makes typeshed expect the model as first argument.
        model = model.to(torch_device)  # type: ignore[arg-type]
        log.info("loaded %s on %s (%s)", name, torch_device, torch_dtype)
        return cls(model, tokenizer, name=name, attention_tolerance=attention_tolerance)

    @classmethod
    def from_settings(cls, settings: Settings) -> TargetModel:
        m = settings.model
        return cls.load(
            m.name,
            models_dir=settings.models_dir,
            device=m.device,
            dtype=m.dtype,
            revision=m.revision,
            attention_tolerance=m.attention_tolerance,
            allow_pickle_weights=m.allow_pickle_weights,
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Iterable[int]) -> str:
        # decode is typed str | list[str] because it also takes batches; one flat id list gives one str.
        return cast(str, self.tokenizer.decode(list(ids), skip_special_tokens=False))

    def _check_ids(self, sequences: Sequence[Sequence[int]]) -> None:
        if not sequences:
            raise InvalidInput("no sequences given; pass at least one list of token ids.")
        for index, seq in enumerate(sequences):
            if len(seq) == 0:
                raise InvalidInput(f"sequence {index} is empty.")
            if len(seq) > self.info.context_length:
                raise InvalidInput(
                    f"sequence {index} has {len(seq)} tokens; {self.info.name} takes at most "
                    f"{self.info.context_length}."
                )
            if min(seq) < 0 or max(seq) >= self.info.vocab_size:
                raise InvalidInput(f"sequence {index} holds token ids outside 0..{self.info.vocab_size - 1}.")

    @torch.inference_mode()
    def capture(
        self,
        sequences: Sequence[Sequence[int]],
        *,
        full_logits: bool = False,
        ablate: Iterable[HeadRef] = (),
        continue_tokens: Sequence[int] | None = None,
        stop_ids: Iterable[int] | None = None,
    ) -> Capture:
        """One forward pass over a batch with attention probabilities for every layer and query head.

        Sequences are right-padded (padding after the real tokens cannot change a causal model's view of
        them) and masked. The validity checks run on every call.

        `continue_tokens[i]` > 0 also completes sequence i greedily by that many tokens (or to a stop
        token), the same tokens `generate` gives. When all sequences have one length (atlas windows do),
        decoding continues from this pass's KV cache, so the prompt is not run a second time.
        """
        self._check_ids(sequences)
        lengths = [len(s) for s in sequences]
        batch, width = len(sequences), max(lengths)
        input_ids = torch.full((batch, width), self.info.pad_id, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for i, seq in enumerate(sequences):
            input_ids[i, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            mask[i, : len(seq)] = 1
        last = torch.tensor(lengths) - 1
        keep: int | torch.Tensor = 0 if full_logits else torch.unique(last)
        budgets = list(continue_tokens) if continue_tokens is not None else [0] * batch
        if len(budgets) != batch or min(budgets) < 0:
            raise InvalidInput("continue_tokens needs one count (0 or more) per sequence.")
        reuse_cache = max(budgets) > 0 and len(set(lengths)) == 1
        heads = frozenset(ablate)
        with self.ablation(heads):
            out = self.model(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                output_attentions=True,
                use_cache=reuse_cache,
                logits_to_keep=keep.to(self.device) if isinstance(keep, torch.Tensor) else keep,
            )
        attentions = getattr(out, "attentions", None)
        if not attentions or any(a is None for a in attentions) or len(attentions) != self.info.n_layers:
            raise AttentionUnavailable(
                f"{self.info.name} returned no attention probabilities (implementation "
                f"{self.model.config._attn_implementation!r}). Load it with attn_implementation='eager' "
                "(TargetModel.load always does)."
            )
        attention = torch.stack(attentions, dim=1)  # (batch, layer, head, q, k)
        check_attention(attention, lengths, n_heads=self.info.n_heads, tolerance=self.attention_tolerance)
        logits = out.logits.float()
        if full_logits:
            last_logits = logits[torch.arange(batch), last.to(logits.device)]
            capture = Capture(attention, last_logits, lengths, logits)
        else:
            column = {int(pos): j for j, pos in enumerate(keep.tolist())}  # type: ignore[union-attr]
            last_logits = torch.stack([logits[i, column[int(p)]] for i, p in enumerate(last)])
            capture = Capture(attention, last_logits, lengths)
        if max(budgets) > 0:
            stops = set(stop_ids if stop_ids is not None else self.info.eos_ids)
            if reuse_cache:
                with self.ablation(heads):
                    capture.continuations = continue_greedy(
                        self.model, out.cache, last_logits, width, budgets, stops
                    )
            else:
                capture.continuations = [
                    self.generate(seq, n, ablate=heads, stop_ids=stops).new_ids if n else []
                    for seq, n in zip(sequences, budgets, strict=True)
                ]
        return capture

    @torch.inference_mode()
    def next_token_logits(
        self, prompt_ids: Sequence[int], *, ablate: Iterable[HeadRef] = ()
    ) -> Float[torch.Tensor, " vocab"]:
        """Logits for the token after `prompt_ids` (no attention kept; cheap), float32 on CPU."""
        self._check_ids([prompt_ids])
        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.device)
        with self.ablation(ablate):
            out = self.model(input_ids=ids, use_cache=False, logits_to_keep=1)
        return out.logits[0, -1].float().cpu()

    @torch.inference_mode()
    def next_token_logits_batch(
        self, sequences: Sequence[Sequence[int]], *, ablate: Iterable[HeadRef] = ()
    ) -> Float[torch.Tensor, "batch vocab"]:
        """Next-token logits after each sequence, batched (right-padded), without attention; float32 CPU."""
        self._check_ids(sequences)
        lengths = [len(s) for s in sequences]
        input_ids = torch.full((len(sequences), max(lengths)), self.info.pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for i, seq in enumerate(sequences):
            input_ids[i, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
            mask[i, : len(seq)] = 1
        last = torch.tensor(lengths) - 1
        keep = torch.unique(last)
        with self.ablation(ablate):
            out = self.model(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), use_cache=False,
                logits_to_keep=keep.to(self.device),
            )  # fmt: skip
        column = {int(pos): j for j, pos in enumerate(keep.tolist())}
        return torch.stack([out.logits[i, column[int(p)]] for i, p in enumerate(last)]).float().cpu()

    @torch.inference_mode()
    def generate(
        self,
        prompt_ids: Sequence[int],
        max_new_tokens: int,
        *,
        ablate: Iterable[HeadRef] = (),
        stop_ids: Iterable[int] | None = None,
        draft: Sequence[int] | None = None,
    ) -> Generation:
        """Greedy, deterministic completion of `prompt_ids`, stopping at a stop token or the budget.

        `draft`, a guess of the completion (any tokens), is checked in one pass before decoding on
        (`attnlens.model.decoding`): the same greedy completion, faster the more of the guess is right."""
        from transformers import GenerationConfig

        if max_new_tokens < 1:
            raise InvalidInput("max_new_tokens must be at least 1.")
        self._check_ids([prompt_ids])
        if len(prompt_ids) + max_new_tokens > self.info.context_length:
            raise InvalidInput(
                f"{len(prompt_ids)} prompt tokens + {max_new_tokens} new tokens exceed the context of "
                f"{self.info.context_length}; shorten the prompt or ask for fewer tokens."
            )
        stops = sorted(set(stop_ids if stop_ids is not None else self.info.eos_ids))
        heads = frozenset(ablate)
        if draft is not None:
            if any(t < 0 or t >= self.info.vocab_size for t in draft):
                raise InvalidInput(f"the draft holds token ids outside 0..{self.info.vocab_size - 1}.")
            with self.ablation(heads):
                new_ids, first_logits = generate_from_draft(
                    self.model, prompt_ids, draft, max_new_tokens, set(stops)
                )
        else:
            config = GenerationConfig(
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=stops or None,
                pad_token_id=self.info.pad_id,
                output_logits=True,
                return_dict_in_generate=True,
            )
            ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.device)
            with self.ablation(heads):
                out = self.model.generate(
                    input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config
                )
            new_ids = out.sequences[0, len(prompt_ids) :].tolist()
            first_logits = out.logits[0][0].float().cpu()
        stopped = "stop_token" if new_ids and new_ids[-1] in stops else "max_new_tokens"
        return Generation(
            prompt_ids=list(prompt_ids),
            new_ids=new_ids,
            text=self.decode(new_ids),
            first_logits=first_logits,
            stopped_by=stopped,
            ablated=heads,
        )

    def ablation(self, heads: Iterable[HeadRef]) -> AbstractContextManager[None]:
        """A context in which `heads` are zero-ablated; hooks are removed on exit, even on error."""
        refs = frozenset(heads)
        if not refs:
            return nullcontext()
        for ref in refs:
            ref.check(self.info.n_layers, self.info.n_heads)
        return ablate_heads(self.model, refs, self.info.head_dim)


def weights_of(name: str) -> str:
    """What the weights of the model loaded as `name` (a preset, hub id or local folder) are. A packaged
    model is a dequantised 4-bit GGUF (model/loading.py caches it in bfloat16 and runs it in
    `ModelInfo.dtype`, float32 on a CPU), not the full-precision release, and every place that names it
    says so."""
    preset = PRESETS.get(name)
    if preset is not None and preset.packaged is not None:
        return preset.packaged.weights
    if preset is not None and preset.source == "tiny":
        return f"random weights (seed {TINY_SEED}), untrained"
    source = preset.source if preset is not None else name
    if Path(source).is_dir():
        return f"local folder {source}"
    return f"{source} from the Hugging Face hub"


def _describe(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, name: str) -> ModelInfo:
    config = model.config
    n_heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // n_heads)
    eos = config.eos_token_id if config.eos_token_id is not None else tokenizer.eos_token_id
    eos_ids = tuple(eos) if isinstance(eos, list | tuple) else ((eos,) if eos is not None else ())
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
    context = getattr(config, "max_position_embeddings", 0) or getattr(config, "n_positions", 2048)
    param = next(model.parameters())
    detected = fim_tokens_from_vocab(tokenizer.get_vocab(), model_type=getattr(config, "model_type", None))
    return ModelInfo(
        name=name,
        architecture=type(model).__name__,
        n_layers=int(config.num_hidden_layers),
        n_heads=n_heads,
        n_kv_heads=int(getattr(config, "num_key_value_heads", None) or n_heads),
        head_dim=head_dim,
        context_length=int(context),
        vocab_size=int(config.vocab_size),
        n_params=sum(p.numel() for p in model.parameters()),
        device=str(param.device),
        dtype=str(param.dtype),
        bos_id=tokenizer.bos_token_id,
        eos_ids=eos_ids,
        pad_id=int(pad),
        fim=detected.fim,
        attn_implementation=str(config._attn_implementation),
        family=detected.family.name if detected.family is not None else None,
        weights=weights_of(name),
    )
