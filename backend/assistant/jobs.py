"""Celery jobs of the assistant (scheduled by beat: backend/settings.py)."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from backend.assistant import candidates


@shared_task
def write_candidate_replies_job() -> dict:
    """The served model's replies into open assistant-reply slots; never raises for a
    server that is down (the run backs off and a later one retries)."""
    return asdict(candidates.write_candidate_replies())
