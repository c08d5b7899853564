"""Serving: the engine front class and its parts (requests, ranking, frames, cache, users)."""
