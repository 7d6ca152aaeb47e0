"""Training AP-MAE on cached patterns: AdamW, cosine schedule, checkpoints, resume.

Batches are drawn uniformly from all cached training patterns, so one batch mixes heads of many
inferences (the reference code fills a batch with consecutive heads of one inference). The best step is
chosen on the validation split; the test split never reaches this module (see attnlens.apmae.sources).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from attnlens.apmae.cache import PatternSet
from attnlens.apmae.configuration import APMAEConfig
from attnlens.apmae.model import APMAE
from attnlens.apmae.train_state import STATE_META, load_training_state, save_training_state, state_exists
from attnlens.errors import CheckpointMismatch, ModelError

log = logging.getLogger(__name__)

STATE = STATE_META  # the file whose presence means "a run to resume is here"
LEGACY_STATE = "training_state.pt"  # before pickle-free states; refused, never loaded
PROGRESS = "progress.json"


@dataclass(frozen=True)
class TrainPlan:
    """The schedule of one training run (saved with its checkpoints)."""

    steps: int
    batch_size: int = 128
    lr: float = 1e-3
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 0
    weight_decay: float = 0.05
    beta1: float = 0.9
    beta2: float = 0.95
    seed: int = 0
    checkpoint_every: int = 500
    eval_every: int = 500
    max_minutes: float | None = None  # stop early (and save) once this much wall time has passed


# Keys transformers adds or changes when it saves a config (architectures, dtype, version); they say
# nothing about the model, so a resume with a freshly built config must not count them as a change.
_BOOKKEEPING_KEYS = frozenset(
    {"architectures", "dtype", "torch_dtype", "transformers_version", "_name_or_path"}
)


def _hyperparameters(config: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in config.items() if key not in _BOOKKEEPING_KEYS}


def lr_at(step: int, plan: TrainPlan) -> float:
    """Linear warmup, then one cosine decay from `lr` to `lr * min_lr_ratio` at `steps`."""
    if step < plan.warmup_steps:
        return plan.lr * (step + 1) / plan.warmup_steps
    span = max(1, plan.steps - plan.warmup_steps)
    progress = min(1.0, (step - plan.warmup_steps) / span)
    floor = plan.lr * plan.min_lr_ratio
    return floor + (plan.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def masked_loss(model: APMAE, images: torch.Tensor, *, batch_size: int = 512, seed: int = 1234) -> float:
    """Masked-patch MSE over `images` with a fixed mask per image (the same masks on every call)."""
    was_training = model.training
    model.eval()
    device = model.lower_ids.device
    generator = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start : start + batch_size].to(device).float()
        visible, masked = model.random_masking(chunk.shape[0], generator)
        out = model(chunk, visible.to(device), masked.to(device))
        total += float(out.loss) * chunk.shape[0]
        count += chunk.shape[0]
    model.train(was_training)
    return total / max(count, 1)


TRAINING_INFO = "training.json"


def _as_json(value: dict[str, object]) -> dict[str, object]:
    """`value` as it reads back from the JSON training state (tuples become lists)."""
    loaded: dict[str, object] = json.loads(json.dumps(value))
    return loaded


def _save_checkpoint(model: APMAE, folder: Path, info: dict[str, object]) -> None:
    """save_pretrained into a temporary folder, then rename: a checkpoint is whole or absent.
    `training.json` beside the weights records the data and plan that produced them."""
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    (tmp / TRAINING_INFO).write_text(json.dumps(info, indent=2, default=str))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def train(
    config: APMAEConfig,
    train_set: PatternSet,
    validation_images: torch.Tensor,
    out_dir: Path,
    plan: TrainPlan,
    *,
    device: torch.device,
    info: dict[str, object] | None = None,
    stop_after: int | None = None,
    progress: bool = True,
) -> dict[str, object]:
    """Train (or resume) an AP-MAE; returns the run summary also written to `out_dir/progress.json`.

    `out_dir/last/` and `out_dir/best/` (lowest validation loss: the step is selected on
    `validation_images`, so their loss is optimistic; report a test split instead) are loadable checkpoints;
    `out_dir/training_state.pt` holds the optimizer, step and RNG state for `--resume`. `stop_after`
    ends this call after that many steps (saving), as an interruption would; a later call resumes.
    """
    from tqdm import tqdm

    if train_set.images.shape[-1] != config.max_length:
        raise CheckpointMismatch(
            f"cached images are {train_set.images.shape[-1]} pixels wide but the model takes "
            f"{config.max_length}; use a cache built for this configuration."
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(plan.seed)
    # functools.wraps on PreTrainedModel.to makes typeshed expect the model as first argument.
    model = APMAE(config).to(device).train()  # type: ignore[arg-type]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=plan.lr, betas=(plan.beta1, plan.beta2), weight_decay=plan.weight_decay
    )
    generator = torch.Generator().manual_seed(plan.seed)
    history: list[dict[str, float]] = []
    step, best, elapsed_before = 0, float("inf"), 0.0
    if (out_dir / LEGACY_STATE).exists() and not state_exists(out_dir):
        raise CheckpointMismatch(
            f"{out_dir} holds a training state saved by an older version as a pickle ({LEGACY_STATE}), which "
            "this version does not load (unpickling can run code); train into a new --out folder."
        )
    resuming = state_exists(out_dir)
    if resuming:
        loaded = load_training_state(out_dir, device)
        state = loaded.meta
        if state["plan"] != _as_json(asdict(plan)) or _hyperparameters(state["config"]) != _hyperparameters(
            _as_json(config.to_dict())
        ):
            raise CheckpointMismatch(
                f"{out_dir} holds a run with a different plan or model configuration; resume with the same "
                "options, or use a new --out folder."
            )
        model.load_state_dict(loaded.model)
        optimizer.load_state_dict(loaded.optimizer)
        generator.set_state(loaded.generator)
        step, best, history = state["step"], state["best"], state["history"]
        elapsed_before = state.get("elapsed_s", 0.0)
        log.info("resuming at step %d of %d", step, plan.steps)

    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )  # bf16 on GPU; CPU autocast is slower than fp32 on our machines
    images = train_set.images  # float16 in RAM; batches are gathered and moved per step
    n = images.shape[0]
    started = time.perf_counter()
    bar = tqdm(total=plan.steps, initial=step, desc="training AP-MAE", unit="step", disable=not progress)
    running = None
    saved_at = step if resuming else -1

    def save(tag_best: bool) -> None:
        nonlocal saved_at
        saved_at = step
        elapsed = elapsed_before + time.perf_counter() - started
        about = {**(info or {}), "plan": asdict(plan), "step": step, "elapsed_s": elapsed, "history": history}
        _save_checkpoint(model, out_dir / "last", about)
        if tag_best:
            _save_checkpoint(model, out_dir / "best", about)
        save_training_state(
            out_dir, model, optimizer, generator,
            {"step": step, "best": best, "history": history, "plan": asdict(plan), "config": config.to_dict(),
             "elapsed_s": elapsed},
        )  # fmt: skip
        summary = {
            "step": step,
            "steps": plan.steps,
            "best_validation_mse": best,
            "elapsed_s": elapsed,
            "history": history,
        }
        (out_dir / PROGRESS).write_text(json.dumps(summary, indent=2))

    first_step = step
    while step < plan.steps:
        if stop_after is not None and step - first_step >= stop_after:
            break
        if plan.max_minutes is not None and (time.perf_counter() - started) / 60 > plan.max_minutes:
            log.info("stopping at step %d: the %.1f-minute budget is spent", step, plan.max_minutes)
            break
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, plan)
        index = torch.randint(0, n, (plan.batch_size,), generator=generator)
        batch = images[index].to(device).float()
        visible, masked = model.random_masking(batch.shape[0], generator)
        with autocast:
            out = model(batch, visible.to(device), masked.to(device))
        if not torch.isfinite(out.loss):
            raise ModelError(f"AP-MAE loss became {float(out.loss)} at step {step}; lower --lr and resume.")
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        step += 1
        value = float(out.loss.detach())
        running = value if running is None else 0.98 * running + 0.02 * value
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}", lr=f"{lr_at(step - 1, plan):.2e}")
        is_eval = step % plan.eval_every == 0 or step == plan.steps
        if is_eval:
            held = masked_loss(model, validation_images)
            history.append({"step": step, "train_mse": running, "validation_mse": held})
            log.info("step %d: train %.5f validation %.5f", step, running, held)
        if is_eval or step % plan.checkpoint_every == 0:
            improved = is_eval and history[-1]["validation_mse"] < best
            if improved:
                best = history[-1]["validation_mse"]
            save(improved)
    bar.close()
    if saved_at != step:
        held = masked_loss(model, validation_images)
        history.append({"step": step, "train_mse": running or float("nan"), "validation_mse": held})
        improved = held < best
        best = min(best, held)
        save(improved)
    return json.loads((out_dir / PROGRESS).read_text())
