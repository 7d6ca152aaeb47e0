"""An independent check of the induction and previous-token labels: the repeated-random-token probe.

The method is the classic one of the induction-heads paper (Olsson et al. 2022, "In-context Learning and
Induction Heads") as TransformerLens runs it (`detect_head`, and the induction score of its demos): feed
the model sequences of random ordinary tokens repeated twice, [r_1..r_L, r_1..r_L], and read each head's
attention at two fixed offsets over the second half's L query rows, averaged over the rows and sequences:

- induction: the query holding the second r_i attends to the token after the first r_i, r_{i+1}, which is
  L-1 positions back (for the second r_L that is the second half's r_1, the token after the first r_L);
- previous token: the query attends to the key just before it.

Random tokens carry no meaning and no syntax, so a head can only score high by its mechanism, not by what
a code corpus happens to contain: the probe is a reference for the atlas's `induction_mass` and
`previous_token_mass` labels (`agreement`). Each half holds L distinct tokens, so "the earlier occurrence"
is unique. When the tokenizer has a BOS token the sequences start with it, as TransformerLens does by
default: models are trained with a first token that many heads use as an attention sink, and without it
position 0 (here r_1) would be that sink. The BOS only shifts every position by one; the offsets stay.

A head is a probe head of a kind when its score is at least `PROBE_THRESHOLD` (0.4 for both kinds), the
share of its attention on the one key the mechanism predicts. The value was fixed before looking at any
result. The atlas labels a head when its median score over the atlas reaches the score's own threshold
(`attnlens.contracts.head_scores`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float
from scipy.stats import spearmanr

from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.model import TargetModel

ProbeKind = Literal["induction", "previous_token"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("induction", "previous_token")
PROBE_THRESHOLD = 0.4  # fixed before looking at any result; the same for both kinds


def atlas_score_name(kind: ProbeKind) -> str:
    """The atlas head score (`attnlens.contracts.head_scores`) that the probe of `kind` checks."""
    return {"induction": "induction_mass", "previous_token": "previous_token_mass"}[kind]


@dataclass(frozen=True)
class ProbeResult:
    """Per-head probe scores of one model: the mean attention on the predicted key, in [0, 1]."""

    model_name: str
    n_layers: int
    n_heads: int
    sequence_length: int  # L, the length of one half (BOS not counted)
    n_sequences: int
    seed: int
    induction: np.ndarray  # (n_layers, n_heads) float64
    previous_token: np.ndarray  # (n_layers, n_heads) float64

    def head_scores(self, kind: ProbeKind) -> dict[str, float]:
        """Head name ("L{layer}H{head}") -> score of `kind`."""
        if kind not in PROBE_KINDS:
            raise InvalidInput(f"unknown probe kind {kind!r}; use one of {', '.join(PROBE_KINDS)}.")
        scores = self.induction if kind == "induction" else self.previous_token
        return {
            HeadRef(layer, head).name: float(scores[layer, head])
            for layer in range(self.n_layers)
            for head in range(self.n_heads)
        }


def ordinary_token_ids(model: TargetModel) -> np.ndarray:
    """Ids the probe may draw: below both the tokenizer's and the embedding's size, and not special."""
    real_vocab = min(len(model.tokenizer), model.info.vocab_size)
    special = set(model.tokenizer.all_special_ids)
    return np.array([i for i in range(real_vocab) if i not in special], dtype=np.int64)


def probe_sequences(
    model: TargetModel, *, sequence_length: int, n_sequences: int, seed: int
) -> list[list[int]]:
    """The probe's inputs: [BOS?, r_1..r_L, r_1..r_L], L distinct ordinary tokens drawn per sequence."""
    if sequence_length < 2:
        raise InvalidInput(
            f"sequence_length is {sequence_length}; use at least 2 (an induction key needs it)."
        )
    if n_sequences < 1:
        raise InvalidInput(f"n_sequences is {n_sequences}; use at least 1.")
    bos = model.tokenizer.bos_token_id
    prefix = [int(bos)] if bos is not None else []
    total = len(prefix) + 2 * sequence_length
    if total > model.info.context_length:
        raise InvalidInput(
            f"the probe's sequences would have {total} tokens but {model.info.name} takes at most "
            f"{model.info.context_length}; use a sequence_length of at most "
            f"{(model.info.context_length - len(prefix)) // 2}."
        )
    pool = ordinary_token_ids(model)
    if sequence_length > len(pool):
        raise InvalidInput(
            f"sequence_length {sequence_length} exceeds the {len(pool)} ordinary tokens of "
            f"{model.info.name}; use a shorter one (each half holds distinct tokens)."
        )
    rng = np.random.default_rng(seed)
    sequences = []
    for _ in range(n_sequences):
        half = rng.choice(pool, size=sequence_length, replace=False).tolist()
        sequences.append(prefix + half + half)
    return sequences


def stripe_sums(
    attention: Float[torch.Tensor, "batch layer head q k"], *, sequence_length: int, offset: int
) -> tuple[Float[torch.Tensor, "layer head"], Float[torch.Tensor, "layer head"]]:
    """Summed over the batch and the second half's L query rows: attention L-1 back and 1 back.

    `offset` is 1 with a BOS first and 0 without; the second half's queries are positions
    offset+L .. offset+2L-1."""
    length = sequence_length
    # Diagonal -(k) holds the entries (q, q-k) for q = k..n-1; entry j is query j+k. Second-half queries
    # (q >= offset+L) start at j = offset+L-k: offset+1 for k = L-1, offset+L-1 for k = 1.
    induction = torch.diagonal(attention, offset=-(length - 1), dim1=-2, dim2=-1)[..., offset + 1 :]
    previous = torch.diagonal(attention, offset=-1, dim1=-2, dim2=-1)[..., offset + length - 1 :]
    assert induction.shape[-1] == length and previous.shape[-1] == length, "not a repeated sequence"
    return induction.double().sum(dim=(0, -1)), previous.double().sum(dim=(0, -1))


def repeated_random_tokens(
    model: TargetModel, *, sequence_length: int = 50, n_sequences: int = 8, seed: int = 0, batch_size: int = 4
) -> ProbeResult:
    """Run the probe (module docstring) on `model`; deterministic for a seed."""
    if batch_size < 1:
        raise InvalidInput(f"batch_size is {batch_size}; use at least 1.")
    sequences = probe_sequences(model, sequence_length=sequence_length, n_sequences=n_sequences, seed=seed)
    offset = 1 if model.tokenizer.bos_token_id is not None else 0
    shape = (model.info.n_layers, model.info.n_heads)
    induction_sum = torch.zeros(shape, dtype=torch.float64)
    previous_sum = torch.zeros(shape, dtype=torch.float64)
    for start in range(0, n_sequences, batch_size):
        capture = model.capture(sequences[start : start + batch_size])
        # All sequences have one length, so the padded batch holds no padding.
        induction, previous = stripe_sums(capture.attention, sequence_length=sequence_length, offset=offset)
        induction_sum += induction.cpu()
        previous_sum += previous.cpu()
    rows = n_sequences * sequence_length
    return ProbeResult(
        model_name=model.info.name, n_layers=shape[0], n_heads=shape[1], sequence_length=sequence_length,
        n_sequences=n_sequences, seed=seed,
        induction=(induction_sum / rows).numpy(), previous_token=(previous_sum / rows).numpy(),
    )  # fmt: skip


@dataclass(frozen=True)
class Agreement:
    """How the atlas's label of one kind agrees with the probe's, the probe being the reference."""

    probe_heads: list[str]  # heads whose probe score is at least the probe threshold
    atlas_heads: list[str]  # heads the atlas labels (median at least the atlas threshold)
    both: list[str]
    precision: float | None  # share of atlas heads the probe confirms; None when the atlas labels none
    recall: float | None  # share of probe heads the atlas labels; None when the probe finds none
    spearman: float | None  # probe score vs atlas median over heads with both; None if undefined
    n_heads: int  # heads the probe scored: the universe of the comparison


def agreement(
    probe: dict[str, float],
    atlas_medians: dict[str, float | None],
    *,
    probe_threshold: float,
    atlas_threshold: float,
) -> Agreement:
    """Compare the probe's heads of one kind with the atlas's. Heads with no atlas median (the score never
    applied) are left out of the atlas side and of the rank correlation, but stay on the probe side."""
    unknown = sorted(set(atlas_medians) - set(probe))
    if unknown:
        raise InvalidInput(
            f"the atlas names heads the probe did not score ({', '.join(unknown[:5])}); compare a probe and "
            "an atlas of the same model."
        )
    medians = {name: value for name, value in atlas_medians.items() if value is not None}
    probe_heads = sorted(
        (name for name, score in probe.items() if score >= probe_threshold), key=HeadRef.parse
    )
    atlas_heads = sorted(
        (name for name, value in medians.items() if value >= atlas_threshold), key=HeadRef.parse
    )
    probe_set = set(probe_heads)
    both = [name for name in atlas_heads if name in probe_set]
    ranked = sorted(medians, key=HeadRef.parse)
    probe_values = [probe[name] for name in ranked]
    atlas_values = [medians[name] for name in ranked]
    spearman: float | None = None
    # A rank correlation needs two heads and some spread on each side (else scipy warns and gives nan).
    if len(ranked) >= 2 and len(set(probe_values)) > 1 and len(set(atlas_values)) > 1:
        rho = float(spearmanr(probe_values, atlas_values).statistic)
        spearman = None if math.isnan(rho) else rho
    return Agreement(
        probe_heads=probe_heads,
        atlas_heads=atlas_heads,
        both=both,
        precision=len(both) / len(atlas_heads) if atlas_heads else None,
        recall=len(both) / len(probe_heads) if probe_heads else None,
        spearman=spearman,
        n_heads=len(probe),
    )
