"""The JSON API for people on this instance, under /api/v1/ (see `routes.py`)."""
