"""The FAISS indexes of head-pattern embeddings, one per embedding space (model, embedder); ids are
`head_pattern.id`."""

from attnlens.index.check import IndexCheckReport, SpaceCheck
from attnlens.index.pattern_index import INDEX_FILENAME, PatternIndex, index_file_bytes
from attnlens.index.search import SearchResult
from attnlens.index.space_index import SpaceIndex
from attnlens.index.spaces import IndexSpace

__all__ = [
    "INDEX_FILENAME",
    "IndexCheckReport",
    "IndexSpace",
    "PatternIndex",
    "SearchResult",
    "SpaceCheck",
    "SpaceIndex",
    "index_file_bytes",
]
