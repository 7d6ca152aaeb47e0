"""Write the test manifest of the default AP-MAE checkpoint into src/attnlens/apmae/testset.py.

    .venv/bin/python scripts/apmae/make_test_manifest.py [--verify]

The default checkpoint was trained before the three-way split: its cache read the first 576 windows of the
`--source windows` stream over the JDK 17 sources (seed 0); files hashed below 10 were its held-out share,
which picked the best step, and all others were training. So no hash range is untouched, and its test set
is the next windows of the same stream (files in a seeded random order, one window per file): files that
cache never read. This script replays the stream with the SmolLM2 tokenizer, takes windows
576..576+count-1, and writes them (file, end token, target length) and their digest between the
`# BEGIN MANIFEST` / `# END MANIFEST` lines of testset.py.

--verify also runs SmolLM2 over the 576 replayed training windows and checks the counts its
training.json records (correct completions of the training and held-out shares), which holds only if
the replay read the same files in the same order as the training run did (about 10 minutes on 2 cores).
"""

import argparse
import json
import subprocess
import sys
from itertools import islice
from pathlib import Path

from attnlens.apmae.load import DEFAULT_CHECKPOINT
from attnlens.apmae.sources import iter_windows, split_of, window_digest
from attnlens.model.loading import load_tokenizer

REPO = Path(__file__).resolve().parents[2]
TARGET = REPO / "src" / "attnlens" / "apmae" / "testset.py"
NAME = "smollm2-jdk17-unseen"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--corpus", type=Path, default=Path("/usr/lib/jvm/openjdk-17/lib/src.zip"))
parser.add_argument("--models-dir", type=Path, default=REPO / "data" / "models")
parser.add_argument("--trained-windows", type=int, default=576, help="windows the training cache read")
parser.add_argument("--count", type=int, default=128, help="test windows to take after them")
parser.add_argument("--verify", action="store_true", help="check the replay against training.json")
args = parser.parse_args()

info = json.loads((DEFAULT_CHECKPOINT / "training.json").read_text())
spec = info["cache_spec"]
assert spec["source"] == "windows" and spec["model"] == "smollm2", spec


class Tokenizer:
    """What the window cutter needs of a TargetModel: `encode`."""

    def __init__(self) -> None:
        self.tokenizer = load_tokenizer("smollm2", models_dir=args.models_dir)

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])


stream = iter_windows(
    Tokenizer(),  # type: ignore[arg-type]
    args.corpus,
    context_tokens=spec["source_length"],
    seed=spec["seed"],
    max_file_bytes=spec["max_file_bytes"],
    source="windows",
)
windows = list(islice(stream, args.trained_windows + args.count))
trained, test = windows[: args.trained_windows], windows[args.trained_windows :]
assert len(test) == args.count, "the corpus ran out"
assert {w.file_path for w in trained}.isdisjoint(w.file_path for w in test)

if args.verify:
    from attnlens.model import TargetModel

    model = TargetModel.load("smollm2", models_dir=args.models_dir, device="cpu", dtype="float32")
    correct = []
    for start in range(0, len(trained), 8):
        batch = trained[start : start + 8]
        logits = model.next_token_logits_batch([w.prompt_ids for w in batch])
        correct += [int(logits[i].argmax()) == w.target_ids[0] for i, w in enumerate(batch)]
    held = [split_of(w.file_path, spec["heldout_percent"]) == "validation" for w in trained]
    train_correct = sum(c and not h for c, h in zip(correct, held, strict=True))
    held_correct = sum(c and h for c, h in zip(correct, held, strict=True))
    heads = 30 * 9
    total = sum(correct)
    print(f"replayed: {total} of {len(trained)} correct; training {train_correct}, held-out {held_correct}")
    assert train_correct * heads == info["train_patterns"], (train_correct, info["train_patterns"])
    assert held_correct * heads == info["heldout_patterns"], (held_correct, info["heldout_patterns"])
    print("the replay matches training.json")

rows = "\n".join(f"        ({w.file_path!r}, {w.end}, {len(w.target_ids)})," for w in test)
trained_on = {
    "cache_spec": spec,
    "train_patterns": info["train_patterns"],
    "heldout_patterns": info["heldout_patterns"],
}
block = f"""SMOLLM2_JDK17_UNSEEN = WindowManifest(
    name={NAME!r},
    description=(
        "windows {args.trained_windows}-{args.trained_windows + args.count - 1} of the `--source windows` "
        "stream over the JDK 17 sources (seed 0, one window per file in a seeded random order), whose "
        "first {args.trained_windows} windows were the checkpoint's whole pattern cache: files its "
        "training and its best-step selection never saw"
    ),
    trained_on={trained_on!r},
    windows=(
{rows}
    ),
    digest={window_digest(test)!r},
)
"""
text = TARGET.read_text()
begin, end = f"# BEGIN MANIFEST {NAME}\n", f"# END MANIFEST {NAME}\n"
head, rest = text.split(begin)
_, tail = rest.split(end)
TARGET.write_text(head + begin + block + end + tail)
subprocess.run([sys.executable, "-m", "ruff", "format", str(TARGET)], check=True)
print(f"wrote {len(test)} windows of {len({w.file_path for w in test})} files into {TARGET}")
