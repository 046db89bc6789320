"""Prefect integration for ElevenLabs."""
