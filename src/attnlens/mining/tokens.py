"""Exact byte offsets of every token of a file, and moving a hole to the file's own token boundaries.

Byte-level BPE tokenizers (GPT-2, StarCoder2, SmolLM2, Llama 3 ...) map every token to a fixed byte
string, so summing token byte lengths gives exact byte offsets into the UTF-8 file. This is more
reliable than `offset_mapping`, whose character offsets are trimmed or merged for some tokenizers.
SentencePiece vocabularies with byte fallback and no prefix space (Gemma 3) do too: a piece is its text
with `▁` for a space, and `<0xNN>` pieces are single bytes. SentencePiece tokenizers that prepend a space
to the text (Llama 2, CodeLlama) do not, and are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import numpy as np

from attnlens.contracts.models import FimTokens, fim_tokens_from_vocab
from attnlens.errors import InvalidInput

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of byte-level BPE vocabularies (GPT-2's convention):
    printable Latin-1 bytes map to themselves, the rest to code points from 256 upward, in byte order."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_SPACE_MARK = "\u2581"  # SentencePiece's word-start mark `▁`
_BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _token_spelling(tokenizer: PreTrainedTokenizerBase) -> str:
    """`byte_level` or `sentencepiece` (byte fallback, spaces as `▁`, nothing prepended), read from the
    tokenizer's own decoder and normalizer; anything else cannot give exact byte offsets and is refused."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = json.loads(backend.to_str()) if backend is not None else {}
    decoder = spec.get("decoder") or {}
    if decoder.get("type") == "ByteLevel":
        return "byte_level"
    steps = (decoder.get("decoders") or []) if decoder.get("type") == "Sequence" else []
    kinds = [step.get("type") for step in steps]
    normalizer = spec.get("normalizer") or {}
    replaces_space = normalizer.get("type") == "Replace" and normalizer.get("content") == _SPACE_MARK
    if "ByteFallback" in kinds and "Strip" not in kinds and replaces_space:
        return "sentencepiece"
    raise InvalidInput(
        "mining needs a tokenizer whose tokens are exact byte strings: byte-level BPE (StarCoder2, SmolLM2, "
        "GPT-2, Llama 3 style) or SentencePiece with byte fallback and no prefix space (Gemma 3); "
        f"{type(tokenizer).__name__} has decoder {decoder.get('type')!r} {kinds or ''}. Pick such a model."
    )


def prompt_bos_of(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The BOS that leads every prompt of a model trained with one, or None: a tokenizer that prepends it
    by default says the model expects it (Gemma, Llama 2). Gemma 3 270M without it completes
    `int max(int a, int b) {` with `\\r\\r\\r...`, with it `if (a > b) { return`."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    return bos if tokenizer("x", add_special_tokens=True)["input_ids"][:1] == [bos] else None


def fim_tokens_of(tokenizer: PreTrainedTokenizerBase) -> FimTokens | None:
    """The FIM marker ids of the tokenizer's model family, or None for a left-to-right model; an
    unregistered FIM spelling raises (see `attnlens.contracts.models.fim_tokens_from_vocab`)."""
    return fim_tokens_from_vocab(tokenizer.get_vocab()).fim


class TokenTable:
    """A tokenizer plus each token id's byte length and the ids that must never come from source text."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self._byte_level = _token_spelling(tokenizer) == "byte_level"
        to_byte = {char: byte for byte, char in _bytes_to_unicode().items()} if self._byte_level else {}
        self._to_byte = to_byte
        vocab = tokenizer.get_vocab()
        size = max(vocab.values()) + 1
        lengths = np.zeros(size, dtype=np.int64)
        added_tokens = getattr(tokenizer, "added_tokens_decoder", {})
        # Added tokens are stored as plain text, not in the byte alphabet. Only the special ones are
        # control tokens; others (some tokenizers add whitespace runs) are ordinary text.
        added = {int(i) for i in added_tokens}
        self._added = frozenset(added)
        special = {int(i) for i, token in added_tokens.items() if getattr(token, "special", True)}
        for token, index in vocab.items():
            lengths[index] = len(token.encode("utf-8")) if index in added else len(self._piece_bytes(token))
        self.byte_lengths = lengths
        self.special_ids = frozenset(special) | frozenset(tokenizer.all_special_ids)
        self.vocab_size = size
        # Ordinary tokens, for the `noise` control (random vocabulary tokens, never markers).
        self.ordinary_ids = np.array(sorted(set(range(size)) - self.special_ids), dtype=np.int64)
        self.prompt_bos = prompt_bos_of(tokenizer)

    def encode(self, text: str) -> list[int]:
        """Token ids of source text. Text that spells a special token (`<filename>` in a comment, say)
        is tokenized as ordinary text, so no control token ever comes from a file."""
        return list(self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])

    def token_bytes(self, ids: Sequence[int]) -> list[bytes]:
        """The bytes each token stands for (a FIM marker's are its spelling): laid end to end they are
        the text the model read, byte for byte."""
        pieces = self.tokenizer.convert_ids_to_tokens([int(i) for i in ids])
        return [
            piece.encode("utf-8") if int(i) in self._added else self._piece_bytes(piece)
            for i, piece in zip(ids, pieces, strict=True)
        ]

    def _piece_bytes(self, piece: str) -> bytes:
        """The bytes a vocabulary piece stands for."""
        if self._byte_level:
            to_byte = self._to_byte
            return b"".join(bytes((to_byte[c],)) if c in to_byte else c.encode("utf-8") for c in piece)
        if _BYTE_PIECE.fullmatch(piece):
            return bytes((int(piece[3:5], 16),))
        return piece.replace(_SPACE_MARK, " ").encode("utf-8")

    def decode(self, ids: list[int]) -> str:
        # decode is typed str | list[str] because it also takes batches; one flat id list gives one str.
        text = self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return cast(str, text)


@dataclass
class FileTokens:
    """A file's tokens and where each starts: token i covers bytes [starts[i], starts[i + 1])."""

    ids: np.ndarray  # (n,) int64
    starts: np.ndarray  # (n + 1,) int64; starts[n] == len(source)

    @property
    def n(self) -> int:
        return len(self.ids)

    def index_at(self, byte: int) -> int:
        """Index of the token that contains `byte`."""
        return int(np.searchsorted(self.starts, byte, side="right") - 1)


def tokenize_file(table: TokenTable, text: str, source: bytes) -> FileTokens | str:
    """The file's tokens, or the reason it cannot be mined (`special_token_text`, `tokenizer_mismatch`)."""
    ids = np.asarray(table.encode(text), dtype=np.int64)
    if len(ids) and (
        ids.max() >= table.vocab_size or any(int(i) in table.special_ids for i in np.unique(ids))
    ):
        # `encode` splits special-token text, so this only guards against tokenizers that ignore that.
        return "special_token_text"
    starts = np.zeros(len(ids) + 1, dtype=np.int64)
    np.cumsum(table.byte_lengths[ids], out=starts[1:])
    if starts[-1] != len(source):
        # A normalizer changed the text; offsets would not point at the file's bytes.
        return "tokenizer_mismatch"
    return FileTokens(ids=ids, starts=starts)


def is_char_boundary(source: bytes, byte: int) -> bool:
    """Whether a cut at `byte` falls between UTF-8 characters (not inside a multi-byte one)."""
    return byte <= 0 or byte >= len(source) or (source[byte] & 0xC0) != 0x80
