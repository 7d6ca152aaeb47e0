"""The atlas: the pipeline from scenarios to stored head patterns (embeddings, thumbnails, statistics)."""
