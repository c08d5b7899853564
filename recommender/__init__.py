"""Hybrid anime recommender engine: user-user CF over hnswlib, TF-IDF content, and blends.

The package never imports streamlit; the dashboard and the CLI both call
:class:`RecommenderEngine`.
"""

from recommender.config import EngineParams
from recommender.errors import RecommenderError
from recommender.serving.engine import RecommenderEngine

__all__ = ["EngineParams", "RecommenderEngine", "RecommenderError"]
