"""Sentence embeddings: the Embedder protocol, the MiniLM ONNX embedder, micro-batching."""

from switchyard.embed.base import Embedder, Vectors, l2_normalise

__all__ = ["Embedder", "Vectors", "l2_normalise"]
