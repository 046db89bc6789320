"""Prefect blocks: credentials and settings."""

from .credentials import ElevenLabsCredentials

__all__ = ["ElevenLabsCredentials"]
