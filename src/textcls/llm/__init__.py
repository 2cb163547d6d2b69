"""Prompted LLMs as classifiers (local and OpenAI-compatible HTTP)."""
