"""The FAISS index of head-pattern embeddings; its ids are `head_pattern.id`."""

from attnlens.index.check import IndexCheckReport
from attnlens.index.pattern_index import INDEX_FILENAME, PatternIndex
from attnlens.index.search import SearchResult

__all__ = ["INDEX_FILENAME", "IndexCheckReport", "PatternIndex", "SearchResult"]
