"""Assemble the shipped AP-MAE checkpoint folder and its model card from a training run's own records.

    .venv/bin/python scripts/apmae/make_card.py --run data/apmae/run-main [--checkpoint best]

Inputs, all produced by the commands the card quotes: the run folder (`attnlens train-apmae`), the
evaluation JSON of the checkpoint on its test split (`attnlens eval-apmae`) and on the selection split
(`attnlens eval-apmae --split validation`, with the decoder-mode comparison runs), and the output of
`benchmarks/bench_apmae.py`. `--card-only` writes MODEL_CARD.md alone (after a new evaluation), leaving
the shipped weights and records as they are.
"""

import argparse
import json
import shutil
from pathlib import Path

parser = argparse.ArgumentParser(description="assemble the default AP-MAE checkpoint and its model card")
parser.add_argument("--run", type=Path, default=Path("data/apmae/run-main"))
parser.add_argument("--checkpoint", default="best", help="sub-folder of the run to ship (best or last)")
parser.add_argument(
    "--eval", type=Path, default=Path("data/apmae/eval-main.json"), help="selection-split evaluation JSON"
)
parser.add_argument(
    "--test-eval", type=Path, default=Path("data/apmae/eval-test.json"), help="test split JSON"
)
parser.add_argument("--trained-windows", type=int, default=576, help="windows the training cache read")
parser.add_argument("--card-only", action="store_true", help="write MODEL_CARD.md only")
parser.add_argument("--png", type=Path, default=Path("data/apmae/eval-main.png"))
parser.add_argument("--cmp-mae", type=Path, default=Path("data/apmae/eval-cmp-mae.json"))
parser.add_argument("--cmp-paper", type=Path, default=Path("data/apmae/eval-cmp-paper.json"))
parser.add_argument("--bench", type=Path, default=Path("data/apmae/bench.txt"))
parser.add_argument("--dest", type=Path, default=Path("src/attnlens/apmae/checkpoints/default"))
parser.add_argument(
    "--story",
    default="The run reached step {steps} of {planned} in {minutes:.1f} minutes of training.",
    help="how the run went, in a sentence or two ({steps}, {planned}, {minutes} are filled in)",
)
args = parser.parse_args()

source = args.run / args.checkpoint
dest = args.dest
dest.mkdir(parents=True, exist_ok=True)
if not args.card_only:
    for name in ("config.json", "model.safetensors", "training.json"):
        shutil.copy(source / name, dest / name)
    shutil.copy(args.png, dest / "reconstruction.png")

ev = json.loads(args.eval.read_text())
test = json.loads(args.test_eval.read_text())
assert test["split"] == "test", "--test-eval must be an evaluation of the test split"
cmp_mae = json.loads(args.cmp_mae.read_text())
cmp_paper = json.loads(args.cmp_paper.read_text())
info = json.loads((source / "training.json").read_text())
bench = args.bench.read_text().strip()
config = json.loads((source / "config.json").read_text())
size_mb = (dest / "model.safetensors").stat().st_size / 1e6
hist = info["history"]

t = test["masked_patch_mse"]
ci = test["intervals"]["overall"]


def with_ci(value, interval, digits=5):
    return f"{value:.{digits}f} ({interval[0]:.{digits}f}-{interval[1]:.{digits}f})"


def layer_row(layer, v):
    c = test["intervals"]["per_layer"][layer]
    return (
        f"| {layer} | {with_ci(v['model'], c['model'])} | {v['mean_image']:.5f} | {v['mean_visible']:.5f} | "
        f"{with_ci(v['model'] / v['mean_image'], c['ratio_to_mean_image'], 3)} | "
        f"{ev['per_layer'][layer]['model']:.5f} |"
    )


rows = "\n".join(
    layer_row(layer, v) for layer, v in sorted(test["per_layer"].items(), key=lambda kv: int(kv[0]))
)
low, high = ci["model"]
m = ev["masked_patch_mse"]
change = t["model"] / m["model"] - 1


def selection_mse(h):
    return h.get("validation_mse", h.get("heldout_mse"))


best = min(hist, key=selection_mse)
falling = all(selection_mse(b) < selection_mse(a) for a, b in zip(hist, hist[1:], strict=False))
if best is hist[-1]:
    selection_note = (
        "Selection had little room here: the best held-out step was the last check "
        f"({best['step']} of {info['plan']['steps']})"
    )
    selection_note += (
        f", and the held-out error fell at every one of the {len(hist)} checks." if falling else "."
    )
else:
    selection_note = f"The best held-out step was {best['step']} of the {hist[-1]['step']} checked."
test_verdict = (
    f"{selection_note} On the untouched test split the AP-MAE's error is {t['model']:.5f} (95% CI "
    f"{low:.5f}-{high:.5f}), {abs(change):.1%} {'above' if change > 0 else 'below'} the selection-split "
    f"figure {m['model']:.5f} (other files, so the gap mixes selection with sampling); it is "
    f"{test['ratio_to_mean_image']:.3f} of the mean image's error (selection split: "
    f"{ev['ratio_to_mean_image']:.2f}) and {test['ratio_to_mean_visible']:.3f} of the visible-patch mean's "
    f"(selection split: {ev['ratio_to_mean_visible']:.2f})."
)
built = test.get("test_set", {})
curve = "\n".join(
    f"| {h['step']} | {h['train_mse']:.5f} | {h.get('validation_mse', h.get('heldout_mse')):.5f} |"
    for h in hist
)


def cmp_row(name, r):
    mm = r["masked_patch_mse"]
    return (
        f"| {name} | {mm['model']:.5f} | {mm['mean_image']:.5f} | {mm['mean_visible']:.5f} | "
        f"{r['ratio_to_mean_image']:.2f} |"
    )


mae_mse, paper_mse = cmp_mae["masked_patch_mse"]["model"], cmp_paper["masked_patch_mse"]["model"]
if paper_mse < mae_mse:
    cmp_verdict = (
        f"At this short budget `paper` reached the lower masked-patch MSE ({paper_mse:.5f} vs "
        f"{mae_mse:.5f}): forcing everything through the CLS vector did not cost reconstruction here. The "
        "default stays `mae` because its long run was already trained when this comparison finished; which "
        "decoder gives the more useful embeddings (cluster quality, predictor accuracy), rather than the "
        "lower reconstruction error, is not measured yet."
    )
else:
    cmp_verdict = (
        f"At this budget `mae` reached the lower masked-patch MSE ({mae_mse:.5f} vs {paper_mse:.5f})."
    )
card = (Path(__file__).parent / "MODEL_CARD.template.md").read_text()
card = card.format(
    size_mb=size_mb,
    steps=info["step"],
    planned=info["plan"]["steps"],
    minutes=info["elapsed_s"] / 60,
    batch=info["plan"]["batch_size"],
    train_patterns=info["train_patterns"],
    train_inferences=info["train_inferences"],
    heldout_patterns=ev["patterns"],
    heldout_inferences=ev["inferences"],
    test_windows=built.get("windows", test["inferences"]),
    test_first=args.trained_windows,
    test_last=args.trained_windows + built.get("windows", 0) - 1,
    test_inferences=test["inferences"],
    test_patterns=test["patterns"],
    test_files=test["files"],
    bootstrap=test["intervals"]["resamples"],
    t_model=with_ci(t["model"], ci["model"]),
    t_image=with_ci(t["mean_image"], ci["mean_image"]),
    t_visible=with_ci(t["mean_visible"], ci["mean_visible"]),
    t_r_image=with_ci(test["ratio_to_mean_image"], ci["ratio_to_mean_image"], 3),
    t_r_visible=with_ci(test["ratio_to_mean_visible"], ci["ratio_to_mean_visible"], 3),
    test_verdict=test_verdict,
    m_model=m["model"],
    m_image=m["mean_image"],
    m_visible=m["mean_visible"],
    r_image=ev["ratio_to_mean_image"],
    r_visible=ev["ratio_to_mean_visible"],
    layer_rows=rows,
    curve=curve,
    cmp_rows=cmp_row("mae", cmp_mae) + "\n" + cmp_row("paper", cmp_paper),
    bench=bench,
    checkpoint_name=source.name,
    cmp_verdict=cmp_verdict,
    run_story=args.story.format(
        steps=info["step"], planned=info["plan"]["steps"], minutes=info["elapsed_s"] / 60
    ),
)
(dest / "MODEL_CARD.md").write_text(card)
print(card[:500])
