"""`attnlens models verify`: whether attnlens's view of a model's attention can be trusted, measured.

Every number in an atlas rests on a few facts that a new architecture or transformers release can break
silently: the eager attention (the only one that returns probabilities) computes what the model's default
attention does, the captured rows are causal softmax rows with one pattern per query head, FIM prompts
built the mining way split back into the file's tokens, and a head ablation acts and then leaves no
trace. `verify_model` measures each on a few short Java windows and returns one `CheckResult` per fact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from jaxtyping import Float
from torch import nn

from attnlens.contracts.models import MODEL_FAMILIES, split_prompt
from attnlens.errors import InvalidInput
from attnlens.heads import HeadRef
from attnlens.mining.tokens import TokenTable, tokenize_file
from attnlens.mining.windows import align_hole, fim_window, l2r_window
from attnlens.model.ablation import attention_output_projections

if TYPE_CHECKING:
    from attnlens.model.target import TargetModel

log = logging.getLogger(__name__)

CheckStatus = Literal["PASS", "FAIL", "SKIP"]

# A small, ordinary Java file: every tokenizer cuts it into a few hundred tokens, enough for windows.
JAVA = """package demo;

import java.util.ArrayList;
import java.util.List;

/** A bounded stack of integers. */
public class BoundedStack {
    private final List<Integer> items = new ArrayList<>();
    private final int capacity;

    public BoundedStack(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity must be positive: " + capacity);
        }
        this.capacity = capacity;
    }

    public boolean push(int value) {
        if (items.size() >= capacity) {
            return false;
        }
        items.add(value);
        return true;
    }

    public int pop() {
        if (items.isEmpty()) {
            throw new IllegalStateException("empty stack");
        }
        return items.remove(items.size() - 1);
    }

    public int sum() {
        int total = 0;
        for (int i = 0; i < items.size(); i++) {
            total += items.get(i);
        }
        return total;
    }
}
"""

# Eager and sdpa attention add the same numbers in another order; the logits then differ by rounding,
# which grows with the logits' size and shrinks with the dtype's mantissa (relative, of max |logit|).
_LOGIT_RTOL = {"torch.float32": 1e-4, "torch.float64": 1e-8, "torch.float16": 2e-2, "torch.bfloat16": 5e-2}


@dataclass(frozen=True)
class CheckResult:
    """One verified fact: PASS, FAIL or SKIP, the figure measured (as printed) and what it means."""

    check: str
    status: CheckStatus
    measured: str
    detail: str


@dataclass(frozen=True)
class VerifyReport:
    """Every check of one model, in the order they ran."""

    model: str
    architecture: str
    family: str | None
    n_layers: int
    n_heads: int
    n_kv_heads: int
    dtype: str
    device: str
    n_windows: int
    window_tokens: int
    checks: tuple[CheckResult, ...]

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "FAIL")

    @property
    def passed(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class _Window:
    """A prompt and, for one built the mining way, what it must split back into."""

    prompt_ids: list[int]
    n_prefix: int
    n_suffix: int
    prefix_ids: list[int]  # the file's tokens before the hole that the prompt shows
    suffix_ids: list[int]
    prefix_text: str  # the file's text those tokens cover
    suffix_text: str


@dataclass(frozen=True)
class _Windows:
    windows: list[_Window]
    mined: bool  # built with the mining token table and window builders
    why_not_mined: str = ""


def verify_model(target: TargetModel, *, n_windows: int = 3, window_tokens: int = 48) -> VerifyReport:
    """Run every check on `target` over `n_windows` Java windows of `window_tokens` tokens each."""
    info = target.info
    built = _java_windows(target, n_windows, window_tokens)
    prompts = [w.prompt_ids for w in built.windows]
    log.info("verifying %s on %d Java windows of %d tokens", info.name, len(prompts), window_tokens)
    steps: tuple[Callable[[], list[CheckResult]], ...] = (
        lambda: [_eager_vs_sdpa(target, prompts)],
        lambda: _attention_checks(target, prompts),
        lambda: [_fim_round_trip(target, built)],
        lambda: _ablation_checks(target, prompts),
    )
    checks: list[CheckResult] = []
    for step in steps:
        for check in step():
            log.info("%s: %s %s", check.check, check.status, check.measured)
            checks.append(check)
    return VerifyReport(
        model=info.name, architecture=info.architecture, family=info.family, n_layers=info.n_layers,
        n_heads=info.n_heads, n_kv_heads=info.n_kv_heads, dtype=info.dtype, device=info.device,
        n_windows=len(prompts), window_tokens=window_tokens, checks=tuple(checks),
    )  # fmt: skip


def _java_windows(target: TargetModel, n_windows: int, window_tokens: int) -> _Windows:
    """Windows around single-token holes spread over `JAVA`, built exactly as mining builds them (FIM or
    left-to-right), or plain slices of the file's tokens when mining refuses the tokenizer."""
    if n_windows < 1 or window_tokens < 8 or window_tokens > target.info.context_length:
        raise InvalidInput(f"need at least one window of 8 to {target.info.context_length} tokens.")
    source = JAVA.encode("utf-8")
    try:
        table = TokenTable(target.tokenizer)
        tokens = tokenize_file(table, JAVA, source)
    except InvalidInput as exc:
        tokens, why = None, exc.message
    else:
        why = "" if not isinstance(tokens, str) else f"the tokenizer does not map the file back ({tokens})"
    if tokens is None or isinstance(tokens, str):
        ids = target.encode(JAVA)
        if len(ids) < window_tokens + n_windows:
            raise InvalidInput(f"the Java sample is {len(ids)} tokens; ask for windows of fewer tokens.")
        slices = [ids[k : k + window_tokens] for k in range(n_windows)]
        return _Windows([_Window(w, len(w), 0, w, [], "", "") for w in slices], False, why)
    fim = target.info.fim
    # Holes leave room for a full window: left-to-right needs `window_tokens` tokens before the hole.
    lowest = 0 if fim is not None else window_tokens
    if tokens.n - 1 - lowest < n_windows:
        raise InvalidInput(f"the Java sample is {tokens.n} tokens; ask for windows of fewer tokens.")
    windows = []
    for k in range(n_windows):
        first = lowest + (k + 1) * (tokens.n - 1 - lowest) // (n_windows + 1)
        hole = align_hole(tokens, int(tokens.starts[first]), int(tokens.starts[first + 1]))
        if fim is not None:
            window = fim_window(tokens, hole, window_tokens, fim, table.prompt_bos)
        else:
            window = l2r_window(tokens, hole, window_tokens, table.prompt_bos)
        if window is None:
            raise InvalidInput(f"the Java sample is {tokens.n} tokens; ask for windows of fewer tokens.")
        begin, stop = hole.first - window.n_prefix_tokens, hole.last + 1 + window.n_suffix_tokens
        windows.append(
            _Window(
                prompt_ids=window.prompt_ids,
                n_prefix=window.n_prefix_tokens,
                n_suffix=window.n_suffix_tokens,
                prefix_ids=tokens.ids[begin : hole.first].tolist(),
                suffix_ids=tokens.ids[hole.last + 1 : stop].tolist(),
                prefix_text=source[window.start : hole.start].decode("utf-8"),
                suffix_text=source[hole.end : window.end].decode("utf-8") if fim is not None else "",
            )
        )
    return _Windows(windows, True)


@contextmanager
def attention_implementation(model: nn.Module, name: str) -> Iterator[None]:
    """Run the block with `name` attention (transformers' `set_attn_implementation`); the original one is
    always restored, also when switching or the block fails."""
    config = getattr(model, "config", None)
    original = str(getattr(config, "_attn_implementation", "eager"))
    switch = getattr(model, "set_attn_implementation", None)
    if switch is None:
        raise NotImplementedError(f"{type(model).__name__} cannot switch attention implementations.")
    try:
        switch(name)
        yield
    finally:
        switch(original)


def _eager_vs_sdpa(target: TargetModel, prompts: list[list[int]]) -> CheckResult:
    name = "eager = sdpa logits"
    model = target.model
    if not getattr(type(model), "_supports_sdpa", False):
        return CheckResult(
            name, "SKIP", "-", f"{type(model).__name__} has no sdpa attention to compare with."
        )
    eager = target.next_token_logits_batch(prompts)
    try:
        with attention_implementation(model, "sdpa"):
            switched = str(model.config._attn_implementation)
            other = target.next_token_logits_batch(prompts) if switched == "sdpa" else None
    except (ValueError, ImportError, NotImplementedError) as exc:
        return CheckResult(name, "SKIP", "-", f"could not switch to sdpa: {exc}")
    restored = str(model.config._attn_implementation)
    if restored != target.info.attn_implementation:
        return CheckResult(
            name, "FAIL", "-", f"switching back left {restored!r} attention instead of "
            f"{target.info.attn_implementation!r}; captures would return no attention.",
        )  # fmt: skip
    if other is None:
        return CheckResult(name, "SKIP", "-", f"{type(model).__name__} cannot switch attention at run time.")
    difference = (eager - other).abs().max().item()
    rtol = _LOGIT_RTOL.get(target.info.dtype, 5e-2)
    allowed = rtol * max(1.0, eager.abs().max().item())
    return _judged(
        name, difference <= allowed, f"{difference:.2e}",
        f"max |eager - sdpa| over last-position logits; allowed {allowed:.1e} ({target.info.dtype})",
        "Eager attention computes something other than the model: its patterns are not the model's.",
    )  # fmt: skip


@torch.inference_mode()
def _raw_attention(
    target: TargetModel, prompts: list[list[int]]
) -> tuple[Float[torch.Tensor, "batch head q k"], ...] | None:
    """Each layer's attention (batch, head, q, k) straight from the model, without the capture's checks
    (which raise at the first problem; these checks measure it)."""
    ids = torch.tensor(prompts, dtype=torch.long, device=target.device)
    out = target.model(input_ids=ids, attention_mask=torch.ones_like(ids), output_attentions=True,
                       use_cache=False, logits_to_keep=1)  # fmt: skip
    attentions = getattr(out, "attentions", None)
    if not attentions or any(a is None for a in attentions):
        return None
    return tuple(attentions)


def _worst(errors: torch.Tensor) -> float:
    # A NaN counts as an infinite error, so it fails a check instead of slipping through max().
    return errors.nan_to_num(nan=float("inf"), posinf=float("inf")).max().item()


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def _judged(check: str, ok: bool, measured: str, detail: str, if_failed: str) -> CheckResult:
    """A PASS, or a FAIL whose detail also says what the failure means."""
    return CheckResult(check, "PASS" if ok else "FAIL", measured, detail if ok else f"{detail}. {if_failed}")


def _attention_checks(target: TargetModel, prompts: list[list[int]]) -> list[CheckResult]:
    info = target.info
    names = ("rows sum to 1", "causal", "one pattern per query head")
    attentions = _raw_attention(target, prompts)
    if attentions is None:
        implementation = target.model.config._attn_implementation
        why = f"no attention probabilities came back ({implementation!r} attention); load it with eager"
        return [CheckResult(name, "FAIL", "-", why) for name in names]
    row_error = max(_worst((a.sum(dim=-1, dtype=torch.float32) - 1.0).abs()) for a in attentions)
    leak = max(_worst(torch.triu(a.float(), diagonal=1).abs()) for a in attentions)
    per_layer = sorted({int(a.shape[1]) for a in attentions})
    group = info.n_heads // max(info.n_kv_heads, 1)
    kv = _count(info.n_kv_heads, "KV head")
    kv += f", {group} query heads share each" if group > 1 else ""
    return [
        _judged(
            names[0], row_error <= target.attention_tolerance, f"{row_error:.2e}",
            f"max |row sum - 1|; allowed {target.attention_tolerance:.1e}",
            "The captured weights are not a softmax over the keys.",
        ),
        _judged(
            names[1], leak == 0.0, f"{leak:.2e}", "max weight above the diagonal; must be exactly 0",
            "Tokens attend to the future: the causal mask was not applied.",
        ),
        _judged(
            names[2], per_layer == [info.n_heads] and len(attentions) == info.n_layers,
            f"{'/'.join(map(str, per_layer))} x {len(attentions)}",
            f"patterns per layer x layers, for {info.n_heads} query heads x {info.n_layers} layers ({kv})",
            "Grouped-query attention must be expanded to one pattern per query head.",
        ),
    ]  # fmt: skip


def _fim_round_trip(target: TargetModel, built: _Windows) -> CheckResult:
    name = "FIM round trip"
    fim = target.info.fim
    family = MODEL_FAMILIES.get(target.info.family or "")
    if fim is None or family is None or family.fim is None:
        return CheckResult(name, "PASS", "-", "left-to-right: no FIM markers")
    if not built.mined:
        return CheckResult(
            name, "SKIP", "-", f"mining cannot build FIM prompts for it: {built.why_not_mined}"
        )
    problems = []
    table = TokenTable(target.tokenizer)
    ids_of = {family.fim.prefix: fim.prefix, family.fim.suffix: fim.suffix, family.fim.middle: fim.middle}
    for spelling, marker in ids_of.items():
        encoded = list(target.tokenizer(spelling, add_special_tokens=False)["input_ids"])
        if encoded != [marker]:
            problems.append(f"{spelling} encodes to {encoded}, not the one token {marker}")
        if marker in table.encode(spelling):
            problems.append(f"source text spelling {spelling} becomes the marker")
    good = 0
    for index, w in enumerate(built.windows):
        prefix, suffix = split_prompt(w.prompt_ids, "fim", w.n_prefix, w.n_suffix)
        lead = len(w.prompt_ids) - w.n_prefix - w.n_suffix - 3  # 1 for a model whose prompts open with BOS
        markers = (w.prompt_ids[lead], w.prompt_ids[lead + 1 + w.n_prefix], w.prompt_ids[-1])
        wrong = [
            what
            for what, bad in (
                ("markers", markers != (fim.prefix, fim.suffix, fim.middle)),
                ("prefix tokens", prefix != w.prefix_ids),
                ("suffix tokens", suffix != w.suffix_ids),
                ("prefix text", table.decode(prefix) != w.prefix_text),
                ("suffix text", table.decode(suffix) != w.suffix_text),
            )
            if bad
        ]
        if wrong:
            problems.append(f"window {index}: {', '.join(wrong)} differ")
        else:
            good += 1
    measured = f"{good}/{len(built.windows)} windows"
    if problems:
        return CheckResult(name, "FAIL", measured, f"{family.name}: " + "; ".join(problems))
    spelled = " ".join(family.fim.tokens)
    return CheckResult(
        name, "PASS", measured,
        f"{family.name} ({spelled}): one token each; prompts split back into the file's prefix and suffix",
    )  # fmt: skip


def _hook_ids(model: nn.Module) -> set[tuple[int, int]]:
    # (projection, hook id) of every hook on the attention output projections, the ones ablation adds.
    return {
        (index, hook)
        for index, projection in enumerate(attention_output_projections(model))
        for hook in (*projection._forward_pre_hooks, *projection._forward_hooks)
    }


def _ablation_checks(target: TargetModel, prompts: list[list[int]]) -> list[CheckResult]:
    head = HeadRef(target.info.n_layers // 2, 0)
    hooks_before = _hook_ids(target.model)
    baseline = target.next_token_logits_batch(prompts)
    with target.ablation([head]):
        ablated = target.next_token_logits_batch(prompts)
        hooks_during = _hook_ids(target.model) - hooks_before
    after = target.next_token_logits_batch(prompts)
    left = _hook_ids(target.model) - hooks_before
    effect = (ablated - baseline).abs().max().item()
    residue = (after - baseline).abs().max().item()
    return [
        _judged(
            "ablation changes logits", effect > 0.0 and bool(hooks_during), f"{effect:.2e}",
            f"max |logit change| zeroing {head.name} ({_count(len(hooks_during), 'hook')})",
            "Zeroing a head did nothing: the ablation hooks the wrong module.",
        ),
        _judged(
            "ablation removed", torch.equal(after, baseline) and not left, f"{residue:.2e}",
            f"max |logit change| after the context exits (must be 0); {_count(len(left), 'hook')} left",
            "An ablation outlived its context: later results would be ablated too.",
        ),
    ]  # fmt: skip
