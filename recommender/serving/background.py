"""Fitting the learned models after start-up, while the engine already serves.

A first start spends most of its time on the learned models (EASE and ALS:
about 60 of 80 s on the bundled data). User-user, content, popularity and the
title search are ready long before, and they are enough for a first page. So a
start-up asked to (``RecommenderEngine.from_settings(background=True)``, which the
dashboard uses) builds those, hands the engine out, and fits the rest here, in
one daemon thread, in two rounds: ALS, EASE and the blend, then the ranker
fitted on top of them. After each round the engine publishes its models in one
step (``RecommenderEngine.add_models``) and saves the cache; until then it names
them in ``preparing`` and refuses them with :class:`ModelPreparingError`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping

from recommender.config import EngineParams
from recommender.core.types import Scorer, TrainingData
from recommender.errors import ModelPreparingError
from recommender.models import registry

_log = logging.getLogger(__name__)

#: ``publish(models)``: called with the models of each round the thread fitted.
Publish = Callable[[dict[str, Scorer]], None]
#: ``save()``: persists what the engine now serves (the model cache).
Save = Callable[[], None]


class BackgroundFit:
    """One thread fitting ``names`` on ``data``; its progress readable from any thread."""

    def __init__(self, data: TrainingData, params: EngineParams, fitted: Mapping[str, Scorer],
                 names: tuple[str, ...], publish: Publish, save: Save | None = None):
        self._data = data
        self._params = params
        self._fitted = dict(fitted)
        self.names = tuple(names)
        self._publish = publish
        self._save = save
        self.save_problem: str | None = None
        self._lock = threading.Lock()
        self._stage = "waiting to start"
        self._fraction = 0.0
        self._problem: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="anirec-background-fit",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def waiting(self, served: Mapping[str, Scorer]) -> tuple[str, ...]:
        """Its algorithms not yet in ``served`` while it runs (none once it ended)."""
        if not self.running:
            return ()
        return tuple(name for name in self.names if name not in served)

    def check(self, wanted, served: Mapping[str, Scorer]) -> None:
        """:class:`ModelPreparingError` when a name in ``wanted`` is still being fitted."""
        waiting = self.waiting(served)
        for name in wanted:
            if isinstance(name, str) and name in waiting:
                raise ModelPreparingError(f"{registry.get(name).label} is still being "
                                          "prepared; ask again in a minute, or use another "
                                          "algorithm")

    @property
    def progress(self) -> tuple[str, float]:
        """What it is fitting now, and the share of the background work done (0..1)."""
        with self._lock:
            return self._stage, self._fraction

    @property
    def problem(self) -> str | None:
        """Why the fit failed (one line), or None."""
        with self._lock:
            return self._problem

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the fit ended (True) or ``timeout`` seconds passed (False)."""
        return self._done.wait(timeout)

    def _report(self, label: str, done: float, share: float) -> None:
        with self._lock:
            self._stage, self._fraction = f"fitting {label}", float(done)

    def _save_cache(self) -> None:
        if self._save is None:
            return
        try:
            self._save()
        except OSError as exc:  # a read-only disk must not stop the service
            _log.warning("cannot save the model cache: %s", exc)
            self.save_problem = str(exc)

    def _run(self) -> None:
        try:
            # The ranker is fitted on top of the other learned models and takes about as
            # long as all of them, so they are published (and saved) first: EASE and the
            # blend serve while the ranker is still being fitted.
            rounds = [False, True] if self._params.use_ranker else [False]
            costs = [self._cost(self._fitted, opt_in) for opt_in in rounds]
            costs[-1] -= costs[0] if len(costs) > 1 else 0.0
            total = sum(costs) or 1.0
            fitted, before = dict(self._fitted), 0.0
            for opt_in, cost in zip(rounds, costs):
                def report(label: str, done: float, share: float, _base=before, _cost=cost):
                    self._report(label, (_base + done * _cost) / total, share)

                models = registry.fit_all(self._data, self._params.models, use_learned=True,
                                          use_opt_in=opt_in, restored=fitted, progress=report)
                before += cost
                fresh = {name: models[name] for name in self.names
                         if name in models and name not in fitted}
                fitted.update(models)
                if fresh:
                    with self._lock:
                        self._stage, self._fraction = "publishing", before / total
                    self._publish(fresh)
                    with self._lock:
                        self._stage = "saving the fitted models"
                    self._save_cache()
        except Exception as exc:  # noqa: BLE001 - a failed fit must not kill the server
            # The engine keeps serving what it has; the models stay unavailable.
            _log.error("fitting the learned models failed: %s", exc, exc_info=True)
            with self._lock:
                self._problem = f"{type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            self._done.set()

    @staticmethod
    def _cost(restored: Mapping[str, Scorer], opt_in: bool) -> float:
        """The fit cost of what one round has to fit (the registry's estimates)."""
        return sum(a.fit_cost for a in registry.enabled(True, opt_in) if a.name not in restored)
