"""AP-MAE training state for `--resume`, without pickle: tensors in safetensors, the rest in JSON.

`torch.load` of a full state dict runs pickle, which can execute code from a tampered file; a resumable
run's folder is exactly the kind of file people copy between machines. Here the model weights, the
optimizer's per-parameter tensors and the shuffling generator's state go to `training_state.safetensors`,
and the optimizer's parameter groups, its non-tensor per-parameter values and the run's bookkeeping (step,
best, history, plan, config, elapsed) to `training_state.json`. Both are written to temporary names and
renamed, JSON last, so a reader never pairs a new tensor file with old bookkeeping.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

STATE_TENSORS = "training_state.safetensors"
STATE_META = "training_state.json"
_MODEL, _OPTIMIZER, _GENERATOR = "model.", "optimizer.", "generator"


@dataclass(frozen=True)
class TrainingState:
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]  # an optimizer.state_dict()
    generator: torch.Tensor  # torch.Generator.get_state(), uint8
    meta: dict[str, Any]  # step, best, history, plan, config, elapsed_s


def state_exists(folder: Path) -> bool:
    return (folder / STATE_META).is_file()


def save_training_state(
    folder: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    meta: dict[str, Any],
) -> None:
    tensors = {_MODEL + k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    optimizer_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in optimizer_state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPTIMIZER}{index}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[name] = value
    tensors[_GENERATOR] = generator.get_state()
    document = {
        **meta,
        "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars},
    }
    tensor_tmp, meta_tmp = folder / (STATE_TENSORS + ".tmp"), folder / (STATE_META + ".tmp")
    save_file(tensors, str(tensor_tmp))
    meta_tmp.write_text(json.dumps(document))
    os.replace(tensor_tmp, folder / STATE_TENSORS)
    os.replace(meta_tmp, folder / STATE_META)


def load_training_state(folder: Path, device: torch.device) -> TrainingState:
    document = json.loads((folder / STATE_META).read_text())
    tensors = load_file(str(folder / STATE_TENSORS), device="cpu")
    optimizer_meta = document.pop("optimizer")
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith(_OPTIMIZER):
            index, name = key[len(_OPTIMIZER) :].split(".", 1)
            state.setdefault(int(index), {})[name] = value.to(device)
    for index, values in optimizer_meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    return TrainingState(
        model={k[len(_MODEL) :]: v.to(device) for k, v in tensors.items() if k.startswith(_MODEL)},
        optimizer={"state": state, "param_groups": optimizer_meta["param_groups"]},
        generator=tensors[_GENERATOR],
        meta=document,
    )
