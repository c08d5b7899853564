"""Start-up progress a visitor understands: every stage named, moving with the time spent."""

from __future__ import annotations

from conftest import TINY_PARAMS, fill_tiny_database
from recommender.config import Settings
from recommender.models import registry
from recommender.serving.startup import start


def run(settings) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    start(settings, lambda stage, fraction: seen.append((stage, fraction)))
    return seen


def test_a_cold_start_names_each_model_with_its_share_and_never_goes_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.db'}"
    fill_tiny_database(url, tmp_path)
    settings = Settings(database_url=url, cache_dir=tmp_path / "cache", params=TINY_PARAMS)
    cold = run(settings)
    stages = [stage for stage, _ in cold]
    fractions = [fraction for _, fraction in cold]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    for algorithm in registry.enabled(TINY_PARAMS.use_models, TINY_PARAMS.use_ranker):
        if algorithm.fit_cost < 1:  # fits in milliseconds: no message
            continue
        fitting = [s for s in stages if s.startswith(f"fitting {algorithm.label} ")]
        assert len(fitting) == 1, (algorithm.name, stages)
        assert "of a first start" in fitting[0]
    # The slow models get most of the bar: the costliest model's step is the largest.
    steps = {s: b - a for (s, a), (_, b) in zip(cold, cold[1:])}
    costliest = max(registry.enabled(True, TINY_PARAMS.use_ranker), key=lambda a: a.fit_cost)
    slowest = next(s for s in steps if s.startswith(f"fitting {costliest.label} "))
    assert steps[slowest] == max(v for s, v in steps.items() if s.startswith("fitting"))
    assert "saving the models for the next start" in stages
    # A warm start loads instead, and fits nothing.
    warm = [stage for stage, _ in run(settings)]
    assert "loading the saved models" in warm
    assert not any(s.startswith("fitting") for s in warm), warm
