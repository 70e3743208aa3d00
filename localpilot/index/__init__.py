"""The indexing pipeline: walk git, filter, chunk, embed, store."""
