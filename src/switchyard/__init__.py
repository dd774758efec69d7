"""switchyard: an OpenAI-compatible LLM inference router."""

__version__ = "0.1.0"
