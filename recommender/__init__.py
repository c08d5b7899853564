"""Hybrid anime recommender engine: user-user CF over hnswlib, TF-IDF content, and blends.

The package never imports streamlit; the dashboard and the CLI both call
:class:`RecommenderEngine`.
"""

from .config import EngineParams
from .engine import RecommenderEngine
from .errors import RecommenderError

__all__ = ["EngineParams", "RecommenderEngine", "RecommenderError"]
