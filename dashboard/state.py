"""Control values that survive any page run, including one that stops early.

Streamlit forgets a widget's value at the end of a run in which the widget was
not drawn: a run that stops before the controls (no such user, an empty list)
resets them to their minimums, and the next interaction makes that real. Each
page therefore keeps a shadow copy of its controls in plain session state, which
Streamlit never cleans up, and restores a widget from it whenever the widget's
own key has gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import streamlit as st

SHADOW = "keep:"


def keep(defaults: dict[str, Any | Callable[[], Any]]) -> None:
    """Call at the top of a page, before anything can stop the run.

    ``defaults`` maps each widget key to its first value (or a function giving it,
    called only when needed, e.g. to read the URL once). Afterwards every key is
    in ``st.session_state`` with the value the visitor chose last.
    """
    state = st.session_state
    for key, default in defaults.items():
        shadow = SHADOW + key
        if key in state:
            state[shadow] = state[key]
        elif shadow in state:
            state[key] = state[shadow]
        else:
            value = default() if callable(default) else default
            state[key] = state[shadow] = value


def put(key: str, value: Any) -> None:
    """Set a kept control from code (a button, a link), before its widget is drawn."""
    st.session_state[key] = st.session_state[SHADOW + key] = value


def forget(keys: Iterable[str]) -> None:
    """Drop kept controls, so that the next run reads them from the URL again."""
    state = st.session_state
    for key in keys:
        state.pop(key, None)
        state.pop(SHADOW + key, None)
