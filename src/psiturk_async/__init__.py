"""psiturk-async: run psiTurk 3 experiments on one async FastAPI service."""

__version__ = "0.1.0"
