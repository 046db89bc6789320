"""Reliability and security: hostile servers, quotas, crashes, bad input, secrets, hardening."""
