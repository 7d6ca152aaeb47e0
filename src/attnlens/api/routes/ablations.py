"""Ablate heads of one inference's model and re-generate."""

from __future__ import annotations

from fastapi import APIRouter

from attnlens.api.deps import InferenceDep, SettingsDep, WorkerDep
from attnlens.api.schemas import AblationPublic, AblationRequest
from attnlens.errors import InputTooLarge, InvalidInput
from attnlens.heads import parse_heads
from attnlens.store.codecs import unpack_token_ids
from attnlens.store.inferences import prompt_ids_of
from attnlens.tokens import TokenDecoder

router = APIRouter(tags=["ablations"])


@router.post("/inferences/{inference_id}/ablations", response_model=AblationPublic)
def create_ablation(
    body: AblationRequest, inference: InferenceDep, worker: WorkerDep, settings: SettingsDep
) -> AblationPublic:
    """Zero the named heads' outputs, re-generate, and compare with the baseline completion."""
    limits = settings.api
    if len(body.heads) > limits.max_ablate_heads:
        raise InputTooLarge(f"{len(body.heads)} heads named; at most {limits.max_ablate_heads} per request.")
    if body.max_new_tokens is not None and body.max_new_tokens > limits.max_new_tokens:
        raise InputTooLarge(f"max_new_tokens is at most {limits.max_new_tokens}.")
    if inference.model_name != worker.status().get("model_name"):
        raise InvalidInput(
            f"inference {inference.id} was made with {inference.model_name!r}; the worker holds "
            f"{worker.status().get('model_name')!r}. Serve that model to ablate it."
        )
    n_layers, n_heads = worker.model_shape()
    heads = sorted(parse_heads(body.heads, n_layers, n_heads))
    scenario = inference.scenario
    prompt = prompt_ids_of(inference)
    target = unpack_token_ids(scenario.target_ids) if scenario else []
    new_tokens = body.max_new_tokens or min(max(len(target), 8), limits.max_new_tokens)
    outcome = worker.ablate(
        prompt, heads, max_new_tokens=new_tokens, expected_token_id=target[0] if target else None,
        draft_ids=unpack_token_ids(inference.completion_ids),  # the build's completion: a guess to check
    )  # fmt: skip
    decoder = TokenDecoder.for_model(inference.model_name, settings.models_dir)
    return AblationPublic(
        inference_id=inference.id,
        heads=outcome.heads,
        baseline_text=outcome.baseline_text,
        ablated_text=outcome.ablated_text,
        changed=outcome.changed,
        diff=outcome.diff,
        kl_at_hole=outcome.kl_at_hole,
        expected_token=decoder.tokens(target[:1])[0] if target else None,
        p_expected_baseline=outcome.p_expected_baseline,
        p_expected_ablated=outcome.p_expected_ablated,
        delta_p_expected=outcome.delta_p_expected,
    )
