"""Build the tiny test tokenizer shipped in src/attnlens/model/assets (run once; the output is committed).

A 1024-token byte-level BPE trained on our own Java text, with StarCoder2's special tokens at StarCoder2's
ids, so that the tiny random StarCoder2 used in tests takes the same FIM paths as the real one.
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "scripts" / "data" / "TokenizerCorpus.java"
OUT = ROOT / "src" / "attnlens" / "model" / "assets" / "tiny_starcoder2_tokenizer.json"
SPECIAL = ["<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"]


def main() -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    text = CORPUS.read_text()
    tokenizer.train_from_iterator([text] * 4, trainer=trainer)
    OUT.write_text(tokenizer.to_str(pretty=False))
    print(f"wrote {OUT} ({tokenizer.get_vocab_size()} tokens)")


if __name__ == "__main__":
    main()
