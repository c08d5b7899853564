"""Hybrid anime recommender engine: user-user CF over hnswlib, TF-IDF content, learned models.

The package never imports streamlit or plotly; the dashboard, the CLI and the
HTTP clients all call :class:`RecommenderEngine`. Its stages are subpackages:
``core`` (types and array helpers), ``data`` (catalogue, database, ingest),
``models`` (one module per algorithm, and the registry), ``serving`` (the
engine, ranking, the cache, start-up, users), ``evaluation`` and ``tools``.
"""

from recommender.config import EngineParams
from recommender.errors import RecommenderError
from recommender.serving.engine import RecommenderEngine

__all__ = ["EngineParams", "RecommenderEngine", "RecommenderError"]
