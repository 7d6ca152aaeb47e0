"""One batch of scenarios through the target model and AP-MAE: everything an atlas stores about them.

The raw attention lives only inside `process_batch`; what leaves it is small (an embedding, a thumbnail and
a few statistics per head, plus the completion and its correctness).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from jaxtyping import Float

from attnlens.atlas.patterns import PatternStats, pattern_stats, thumbnails
from attnlens.mining import HoleConfidence, Scenario, first_token_correct, hole_confidence
from attnlens.mining.token_relations import prompt_relations
from attnlens.model import TargetModel

# Raw attention probabilities of N heads -> N embeddings and N reconstruction errors (AP-MAE's
# `embed_with_errors`, scaling included).
Embedder = Callable[
    [Float[torch.Tensor, "batch q k"]], tuple[Float[torch.Tensor, "batch dim"], Float[torch.Tensor, " batch"]]
]


@dataclass
class ProcessedInference:
    """What the atlas keeps of one scenario run through the model. Head rows are in (layer, head) order."""

    scenario: Scenario
    first_token_correct: bool
    span_correct: bool
    expected_token_prob: float
    confidence: HoleConfidence  # of the model's next-token distribution at the hole
    completion_ids: list[int]
    completion_text: str
    embeddings: np.ndarray  # (layer*head, dim) float32
    reconstruction_errors: np.ndarray  # (layer*head,) float32: AP-MAE's masked-patch MSE, the anomaly signal
    thumbnails: np.ndarray  # (layer*head, size, size) uint8
    stats: PatternStats  # one value per head


def process_batch(
    model: TargetModel,
    embed: Embedder,
    scenarios: Sequence[Scenario],
    *,
    thumbnail_size: int = 32,
) -> list[ProcessedInference]:
    """Capture attention for the batch in one forward pass, embed every head, and complete each scenario
    greedily for span correctness: as many tokens as its target has, or to a stop token (the definition
    of `attnlens.mining.span_correct`), decoded from the same pass's KV cache."""
    capture = model.capture(
        [s.prompt_ids for s in scenarios], continue_tokens=[len(s.target_ids) for s in scenarios]
    )
    n_layers, n_heads = model.info.n_layers, model.info.n_heads
    results = []
    for index, scenario in enumerate(scenarios):
        heads = capture.pattern(index).reshape(n_layers * n_heads, *capture.pattern(index).shape[-2:])
        relations = prompt_relations(model.tokenizer, scenario.prompt_ids)
        with torch.inference_mode():
            embedded, errors = embed(heads)
            vectors = embedded.float().cpu().numpy()
        logits = capture.last_logits[index]
        probability = float(torch.softmax(logits.double(), dim=-1)[scenario.target_ids[0]])
        completion = capture.continuations[index]
        results.append(
            ProcessedInference(
                scenario=scenario,
                first_token_correct=first_token_correct(logits, scenario),
                span_correct=completion == scenario.target_ids,
                expected_token_prob=probability,
                confidence=hole_confidence(logits),
                completion_ids=completion,
                completion_text=model.decode(completion),
                embeddings=vectors.astype(np.float32),
                reconstruction_errors=errors.float().cpu().numpy().astype(np.float32),
                thumbnails=thumbnails(heads, thumbnail_size),
                stats=pattern_stats(heads, relations),
            )
        )
    return results
