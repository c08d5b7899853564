"""Which algorithms the dashboard offers, in what order, under which names and defaults.

Pure functions of the engine (no Streamlit): algorithms still being fitted in the
background (``engine.preparing``) are offered too, where a page lists them, so a
share link naming one and the default choice hold while they are prepared.
"""

from __future__ import annotations

from recommender import RecommenderEngine
from recommender.errors import RecommenderError
from recommender.models import registry


def algorithm_choices(engine: RecommenderEngine, preparing: bool = False) -> list[str]:
    """Algorithms to offer, hybrid first, then the collaborative ones, content and the rest.

    ``preparing=True`` also lists those still being fitted in the background (in the
    order they will have), so the choices do not move when they become ready.
    """
    waiting = engine.preparing if preparing else ()
    names = [a for a in (*engine.algorithms, *waiting)
             if a == registry.HYBRID or registry.get(a).offered]
    collaborative = collaborative_choices(engine) if preparing else \
        list(engine.collaborative_algorithms)
    first = ["hybrid", *collaborative, "content"]
    ordered = [a for a in first if a in names]
    return ordered + _in_registry_order(a for a in names if a not in ordered)


def collaborative_choices(engine: RecommenderEngine) -> list[str]:
    """The hybrid's possible collaborative parts, those still being fitted included."""
    return _in_registry_order([*engine.collaborative_algorithms,
                               *(a for a in engine.preparing if registry.get(a).collaborative)])


def _in_registry_order(names) -> list[str]:
    names = list(dict.fromkeys(names))
    rank = {a.name: i for i, a in enumerate(registry.ALGORITHMS)}
    return sorted(names, key=lambda n: rank.get(n, len(rank)))


def algorithm_label(name: str) -> str:
    """How the dashboard names an algorithm (the registry's label)."""
    if name == registry.HYBRID:
        return "Hybrid"
    try:
        return registry.get(name).label
    except RecommenderError:
        return str(name)


def preparing_captions(engine: RecommenderEngine, names: list[str]) -> list[str]:
    """Per choice, "still preparing" for one being fitted in the background, else nothing."""
    waiting = engine.preparing
    return ["still preparing" if name in waiting else "" for name in names]


def default_algorithm(engine: RecommenderEngine) -> str:
    """The algorithm a first view uses: the engine's default (``EngineParams``).

    Still being fitted, it is chosen anyway (and labelled so) while the ready models
    serve; not fitted at all (``use_ranker`` or ``use_models`` off), the engine's
    fallback is (the best fitted one on validation).
    """
    choices = algorithm_choices(engine, preparing=True)
    name = engine.params.default_algorithm
    if name in choices:
        return name
    return engine.default_algorithm if engine.default_algorithm in choices else choices[0]


def default_collaborative(engine: RecommenderEngine) -> str:
    """The hybrid's collaborative part in a first view: the engine's default (as above)."""
    name = engine.params.hybrid_collaborative
    return name if name in collaborative_choices(engine) else engine.default_collaborative
