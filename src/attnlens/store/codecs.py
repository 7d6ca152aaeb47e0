"""Compact binary encodings of the array columns, and their inverses.

- Token ids: int32 little-endian. A 256-token prompt is 1 KiB (JSON would be about 1.5 KiB and slower to
  parse); int32 holds any vocabulary size in use, and `np.frombuffer` decodes it without a copy.
- Embeddings: float16 little-endian (128-d = 256 bytes). Half precision keeps about 3 significant digits,
  far more than nearest-neighbour ranking of AP-MAE embeddings can tell apart, at half the bytes of float32.
- Thumbnails: only the lower triangle (diagonal included) of the square uint8 thumbnail, row by row.
  Causal attention is zero above the diagonal, so the upper triangle carries nothing: a 32x32 thumbnail
  takes 528 bytes instead of 1,024.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_TOKEN_DTYPE = np.dtype("<i4")
_EMBEDDING_DTYPE = np.dtype("<f2")


def pack_token_ids(ids: Sequence[int] | np.ndarray) -> bytes:
    array = np.asarray(ids, dtype=np.int64)
    if array.ndim != 1:
        raise ValueError(f"token ids must be one-dimensional, got shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > np.iinfo(np.int32).max):
        raise ValueError("token ids must lie in [0, 2**31)")
    return array.astype(_TOKEN_DTYPE).tobytes()


def unpack_token_ids(blob: bytes | None) -> list[int]:
    if not blob:
        return []
    return np.frombuffer(blob, dtype=_TOKEN_DTYPE).astype(np.int64).tolist()


def pack_embedding(vector: np.ndarray) -> bytes:
    """One embedding (dim,) as float16 bytes."""
    array = np.asarray(vector, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"an embedding must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("an embedding contains NaN or infinity")
    return array.astype(_EMBEDDING_DTYPE).tobytes()


def pack_embeddings(vectors: np.ndarray) -> list[bytes]:
    """Many embeddings (n, dim) as float16 bytes each, converted in one pass (`pack_embedding`'s checks)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"embeddings must be two-dimensional (n, dim), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("an embedding contains NaN or infinity")
    return [row.tobytes() for row in array.astype(_EMBEDDING_DTYPE)]


def unpack_embedding(blob: bytes) -> np.ndarray:
    """float16 bytes -> (dim,) float32."""
    return np.frombuffer(blob, dtype=_EMBEDDING_DTYPE).astype(np.float32)


def unpack_embeddings(blobs: Sequence[bytes]) -> np.ndarray:
    """Many float16 blobs of one size -> (n, dim) float32, in one pass."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    sizes = {len(b) for b in blobs}
    if len(sizes) != 1:
        raise ValueError(f"embeddings of different sizes in one batch: {sorted(s // 2 for s in sizes)} dims")
    joined = np.frombuffer(b"".join(blobs), dtype=_EMBEDDING_DTYPE)
    return joined.reshape(len(blobs), -1).astype(np.float32)


def embedding_dim(blob: bytes) -> int:
    return len(blob) // _EMBEDDING_DTYPE.itemsize


def pack_thumbnail(image: np.ndarray) -> bytes:
    """A square uint8 (size, size) image -> its lower triangle, row by row."""
    array = np.asarray(image)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"a thumbnail must be a square 2-D array, got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"a thumbnail must be uint8, got {array.dtype}")
    rows, cols = np.tril_indices(array.shape[0])
    return array[rows, cols].tobytes()


def pack_thumbnails(images: np.ndarray) -> list[bytes]:
    """Many square uint8 images (n, size, size) -> each one's lower triangle, row by row, in one pass."""
    array = np.asarray(images)
    if array.ndim != 3 or array.shape[1] != array.shape[2]:
        raise ValueError(f"thumbnails must be (n, size, size), got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(f"a thumbnail must be uint8, got {array.dtype}")
    rows, cols = np.tril_indices(array.shape[1])
    return [row.tobytes() for row in np.ascontiguousarray(array[:, rows, cols])]


def unpack_thumbnail(blob: bytes, size: int) -> np.ndarray:
    """Lower-triangle bytes -> the (size, size) uint8 image, zero above the diagonal."""
    expected = size * (size + 1) // 2
    if len(blob) != expected:
        raise ValueError(f"a {size}x{size} lower-triangle thumbnail has {expected} bytes, got {len(blob)}")
    image = np.zeros((size, size), dtype=np.uint8)
    image[np.tril_indices(size)] = np.frombuffer(blob, dtype=np.uint8)
    return image
