"""Model backends. The only package that imports torch, sentence_transformers or llama_cpp (lazily)."""
