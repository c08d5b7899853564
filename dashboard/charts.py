"""Plotly figures of the analyst pages: Tune, Neighbours, Performance (no streamlit here).

Every text that comes from the data (titles, genres) is HTML-escaped before it
reaches a label or a hover, since Plotly renders a subset of HTML tags.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from recommender.data.catalog import anime_url

#: ``st.plotly_chart(config=...)``: no toolbar, which on a phone covers the chart's title.
CHART_CONFIG = {"displayModeBar": False}
#: Ratings run -1..10 on the colour axis: -1 (watched, not rated) is grey, not a bad rating.
RATING_COLOURS = [[0.0, "#b8b8b8"], [0.09, "#b8b8b8"], [0.091, "#d73027"], [0.55, "#fee08b"],
                  [1.0, "#1a9850"]]
#: Longest title on a chart axis; the hover has the full one.
AXIS_TITLE_CHARS = 22


def _text(value: object) -> str:
    return html.escape(str(value), quote=False)


def short(value: object, limit: int = AXIS_TITLE_CHARS) -> str:
    """``value`` cut to ``limit`` characters with an ellipsis (escaped for Plotly)."""
    text = str(value)
    return _text(text if len(text) <= limit else text[:limit - 1].rstrip() + "…")


#: Human labels of the metric columns.
LABELS = {"ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "hit_rate": "Hit rate",
          "map": "MAP", "coverage": "Catalogue coverage", "novelty": "Novelty (bits)",
          "diversity": "Genre diversity"}
LABELS_COLLAB = {"user-user": "user-user", "ease": "EASE", "mf": "matrix factorisation",
                 "ranker": "learned ranker"}


#: Metrics that are shares of a whole, shown as percentages.
PERCENT = {"coverage"}
HYBRID_COLOURS = {"user-user": "#1f77b4", "ease": "#ff7f0e", "mf": "#2ca02c",
                  "ranker": "#d62728"}
ALONE_SYMBOLS = ["diamond", "square", "triangle-up", "cross", "x", "star-triangle-up",
                 "pentagon", "hexagon"]


def _label(metric: str, k: int) -> str:
    return f"{LABELS.get(metric, metric)}" + ("" if metric in PERCENT else f"@{k}")


def _hybrids(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    hybrid = rows[rows["algorithm"] == "hybrid"]
    if "collaborative" not in hybrid:
        return [("user-user", hybrid.sort_values("weight"))]
    return [(c, group.sort_values("weight"))
            for c, group in hybrid.groupby("collaborative", sort=False)]


def weight_curve(table: pd.DataFrame, metric: str, segment: str, current_weight: float,
                 k: int, collaborative: str = "user-user") -> go.Figure:
    """``metric`` of each hybrid against its weight, the algorithms alone as flat lines.

    Every line is named in the legend rather than by a label on the chart, so
    no two labels can overlap. The chosen hybrid is drawn solid with its best
    weight as a star; the current weight is a dashed vertical line.
    """
    rows = table[table["segment"] == segment]
    fig = go.Figure()
    for collab, hybrid in _hybrids(rows):
        chosen = collab == collaborative
        fig.add_scatter(x=hybrid["weight"], y=hybrid[metric], mode="lines+markers",
                        name=f"hybrid on {_text(LABELS_COLLAB.get(collab, collab))}",
                        line={"color": HYBRID_COLOURS.get(collab), "width": 3 if chosen else 1.5,
                              "dash": "solid" if chosen else "dash"},
                        marker={"size": 5})
        if chosen and hybrid[metric].notna().any():
            best = hybrid.loc[hybrid[metric].idxmax()]
            fig.add_scatter(x=[best["weight"]], y=[best[metric]], mode="markers",
                            name="best weight", marker={"symbol": "star", "size": 16,
                                                        "color": "gold",
                                                        "line": {"width": 1, "color": "black"}})
    alone = rows[rows["algorithm"] != "hybrid"]
    for _, row in alone.iterrows():
        fig.add_scatter(x=[0.0, 1.0], y=[row[metric]] * 2, mode="lines",
                        name=f"{_text(row['variant'])} alone",
                        line={"dash": "dot", "width": 1})
    fig.add_vline(x=current_weight, line_dash="dash", line_color="red",
                  annotation_text=f"current {current_weight:.2f}")
    fig.update_layout(xaxis_title="collaborative weight w (0 = content only)",
                      yaxis_title=_label(metric, k), height=440, margin={"t": 30, "r": 10},
                      legend={"orientation": "h", "y": -0.25})
    if metric in PERCENT:
        fig.update_yaxes(tickformat=percent_ticks(rows[metric]))
    return fig


def percent_ticks(values) -> str:
    """A percent tick format with as many decimals as the values' span needs.

    Plotly puts several ticks inside one whole percent when the span is small
    (coverage often moves by tenths of a point), and ``.0%`` then labels them
    all alike, e.g. "3%, 3%, 3%". Up to ten ticks over the span must differ.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    span = float(finite.max() - finite.min()) if finite.size else 0.0
    if span <= 0:
        return ".0%"
    # A tenth of the span, in percentage points, must show in the last decimal.
    return f".{min(3, max(0, int(np.ceil(-np.log10(span * 10)))))}%"


def tradeoff_chart(table: pd.DataFrame, accuracy: str, other: str, segment: str,
                   k: int) -> go.Figure:
    """Accuracy against coverage, novelty or diversity: one point per variant.

    Points carry no text labels (they crowd together and overlap); each hybrid
    is a line whose points hover with their weight, and each algorithm alone
    has its own symbol in the legend.
    """
    rows = table[table["segment"] == segment]
    fig = go.Figure()
    for collab, hybrid in _hybrids(rows):
        fig.add_scatter(x=hybrid[other], y=hybrid[accuracy], mode="lines+markers",
                        name=f"hybrid on {_text(LABELS_COLLAB.get(collab, collab))}",
                        line={"color": HYBRID_COLOURS.get(collab)},
                        hovertext=[f"w={w:.2f}" for w in hybrid["weight"]],
                        hoverinfo="text+x+y")
    alone = rows[rows["algorithm"] != "hybrid"]
    for number, (_, row) in enumerate(alone.iterrows()):
        fig.add_scatter(x=[row[other]], y=[row[accuracy]], mode="markers",
                        name=f"{_text(row['variant'])} alone",
                        marker={"size": 11, "symbol": ALONE_SYMBOLS[number % len(ALONE_SYMBOLS)]})
    fig.update_layout(xaxis_title=_label(other, k), yaxis_title=_label(accuracy, k),
                      height=440, margin={"t": 30, "r": 10},
                      legend={"orientation": "h", "y": -0.25})
    if other in PERCENT:
        fig.update_xaxes(tickformat=percent_ticks(rows[other]))
    return fig


#: The diversity sweep's panels, top to bottom: (column, axis title).
DIVERSITY_PANELS = (("ndcg", "NDCG"), ("coverage", "Catalogue coverage"),
                    ("intra_list_diversity", "Genre diversity"))


def diversity_chart(curve: pd.DataFrame, segment: str, current: float, k: int,
                    algorithm: str) -> go.Figure:
    """NDCG@k, catalogue coverage and genre diversity against MMR's diversity setting.

    Three panels over one x axis, since the metrics have different scales; the
    chosen setting is a dashed vertical line in each, labelled once (top).
    """
    from plotly.subplots import make_subplots

    rows = curve[curve["segment"] == segment].sort_values("diversity")
    fig = make_subplots(rows=len(DIVERSITY_PANELS), cols=1, shared_xaxes=True,
                        vertical_spacing=0.06)
    for number, (column, title) in enumerate(DIVERSITY_PANELS, start=1):
        fig.add_scatter(x=rows["diversity"], y=rows[column], mode="lines+markers",
                        name=title + ("" if column in PERCENT else f"@{k}"), row=number,
                        col=1, showlegend=False)
        fig.update_yaxes(title_text=title + ("" if column in PERCENT else f"@{k}"),
                         tickformat=percent_ticks(rows[column]) if column in PERCENT else None,
                         row=number, col=1)
        label = {"annotation_text": f"variety {current:.1f}"} if number == 1 else {}
        fig.add_vline(x=current, line_dash="dash", line_color="red", row=number, col=1,
                      **label)
    fig.update_xaxes(title_text=f"variety (MMR diversity) of {_text(algorithm)}",
                     row=len(DIVERSITY_PANELS), col=1)
    fig.update_layout(height=560, margin={"t": 30, "r": 10})
    return fig


# ---------------------------------------------------------------------- neighbours
def similarity_dots(neighbours: pd.DataFrame, title: str) -> go.Figure:
    """One dot per neighbour on an axis fitted to the similarities (not from 0).

    Bars would have to start at 0, which makes 0.38 and 0.42 look alike; dots
    on a fitted axis keep the differences visible. Neighbours with a thin
    overlap (``thin``) are hollow.
    """
    sims = neighbours["similarity"].to_numpy(dtype=float)
    thin = neighbours["thin"].to_numpy(dtype=bool) if "thin" in neighbours else \
        np.zeros(len(sims), bool)
    why = neighbours["why"] if "why" in neighbours else pd.Series([""] * len(sims))
    # The line breaks live in the template; the data-derived parts are escaped text.
    custom = [[int(sh), int(n), " · ⚠ thin overlap" if t else "",
               f"why: {_text(w)}" if w else ""]
              for sh, n, t, w in zip(neighbours["shared"], neighbours["n_ratings"], thin, why)]
    fig = go.Figure(go.Scatter(
        x=neighbours["user_id"].astype(str), y=sims, mode="markers",
        marker={"size": 11, "color": "#1f77b4",
                "symbol": ["circle-open" if t else "circle" for t in thin],
                "line": {"width": 2, "color": "#1f77b4"}},
        customdata=custom, name="neighbour",
        hovertemplate="user %{x}<br>similarity %{y:.4f}<br>%{customdata[0]} shared of "
                      "%{customdata[1]} ratings%{customdata[2]}<br>%{customdata[3]}"
                      "<extra></extra>"))
    low, high = (float(sims.min()), float(sims.max())) if len(sims) else (0.0, 1.0)
    pad = max(0.1 * (high - low), 0.01)
    fig.update_xaxes(type="category", title="neighbour (user id)")
    fig.update_yaxes(range=[max(low - pad, 0.0) if low > 0 else low - pad, high + pad],
                     title="similarity")
    fig.update_layout(title=title, margin={"t": 50, "b": 10, "l": 10, "r": 10}, height=340)
    return fig


def genre_profile_chart(profile: pd.DataFrame) -> go.Figure:
    """Shares of liked anime per genre: the user, the neighbours, and everyone (baseline)."""
    colours = {"user": "#d62728", "neighbours": "#1f77b4", "everyone": "#b0b0b0"}
    names = {"user": "user", "neighbours": "neighbours", "everyone": "everyone (baseline)"}
    fig = go.Figure()
    for group, rows in profile.groupby("group", sort=False):
        fig.add_bar(x=rows["share"], y=[short(g) for g in rows["genre"]], orientation="h",
                    name=names.get(group, _text(group)), marker_color=colours.get(group),
                    hovertext=[f"{_text(g)}: {v:.0%} of {names.get(group, '')} likes"
                               for g, v in zip(rows["genre"], rows["share"])],
                    hoverinfo="text")
    fig.update_layout(barmode="group", title="Genres of liked anime",
                      margin={"t": 50, "b": 10, "l": 10, "r": 10}, height=420,
                      yaxis={"autorange": "reversed"}, xaxis_tickformat=".0%",
                      legend={"orientation": "h", "y": -0.12})
    return fig


def rating_heatmap(heat: pd.DataFrame) -> go.Figure:
    """Titles down the side, users across: readable on a phone (long titles stay horizontal).

    ``heat`` is :func:`dashboard.summaries.shared_ratings` (users x titles, with
    ``attrs["anime_ids"]``); titles are cut to :data:`AXIS_TITLE_CHARS` on the
    axis, each a link to the title's MyAnimeList page (Plotly draws ``<a>`` in tick
    labels; the address is built from the integer id, the title is escaped text), and
    the hover holds the full title.
    """
    grid = heat.to_numpy(dtype=float).T  # titles x users
    ids = heat.attrs.get("anime_ids") or [None] * heat.shape[1]
    users = [u.replace(" (chosen)", "★").replace("user ", "") for u in heat.index]
    # Two titles can shorten to the same text: number them so rows stay apart.
    labels = [f"{short(t)} ·{i + 1}" for i, t in enumerate(heat.columns)]
    links = [f'<a href="{anime_url(a)}" target="_blank">{label}</a>' if a is not None
             else label for label, a in zip(labels, ids)]
    custom = [[[_text(title), _text(user),
                "not watched" if np.isnan(v) else "watched, not rated" if v < 0 else f"{v:g}",
                "click the title to open its MyAnimeList page" if a is not None else ""]
               for user, v in zip(heat.index, row)]
              for title, a, row in zip(heat.columns, ids, grid)]
    text = [["" if np.isnan(v) else f"{v:g}" for v in row] for row in grid]
    # The line breaks live in the template; the data-derived parts are escaped text.
    fig = go.Figure(go.Heatmap(z=grid, x=users, y=labels, zmin=-1, zmax=10,
                               colorscale=RATING_COLOURS, text=text, texttemplate="%{text}",
                               textfont={"size": 10}, customdata=custom,
                               hovertemplate="%{customdata[0]}<br>%{customdata[1]}: "
                                             "%{customdata[2]}<br>%{customdata[3]}"
                                             "<extra></extra>",
                               colorbar={"title": "rating", "thickness": 10}, xgap=1, ygap=1))
    fig.update_xaxes(type="category", side="top", tickangle=-60, tickfont={"size": 10},
                     title="user (★ = chosen)")
    fig.update_yaxes(type="category", autorange="reversed", tickfont={"size": 10},
                     tickmode="array", tickvals=labels, ticktext=links)
    fig.update_layout(margin={"t": 60, "b": 10, "l": 10, "r": 10},
                      height=110 + 22 * len(labels))
    return fig


# ---------------------------------------------------------------------- performance
def build_stages_chart(stages: pd.DataFrame) -> go.Figure:
    """Seconds of each build and load stage (:func:`dashboard.summaries.build_stages`)."""
    fig = go.Figure(go.Bar(x=stages["seconds"], y=[_text(s) for s in stages["stage"]],
                           orientation="h", text=[f"{s:.2f} s" for s in stages["seconds"]],
                           textposition="auto"))
    fig.update_layout(title="Build and load stages (latest run of each)",
                      margin={"t": 50, "b": 10, "l": 10, "r": 10}, height=320,
                      xaxis_title="seconds", yaxis={"autorange": "reversed"})
    return fig


def ef_sweep_chart(sweep: pd.DataFrame, ef: int, candidates: int, k: int) -> go.Figure:
    """Recall against hnswlib's ``ef`` (:func:`recommender.tools.measure.ef_sweep`).

    The chosen ``ef`` is a dashed line; below ``candidates + 1`` the re-ranked
    path searches that wide whatever ``ef`` is, so only the index-alone curve moves.
    """
    fig = go.Figure()
    fig.add_scatter(x=sweep["ef"], y=sweep["recall_reranked"], mode="lines+markers",
                    name="re-ranked")
    fig.add_scatter(x=sweep["ef"], y=sweep["recall_index_only"], mode="lines+markers",
                    name="index alone")
    fig.add_vline(x=ef, line_dash="dash", line_color="red", annotation_text=f"ef {ef}")
    fig.add_vrect(x0=float(sweep["ef"].min()), x1=candidates + 1, fillcolor="#888",
                  opacity=0.12, line_width=0)
    fig.update_layout(title=f"Recall@{k} against ef (shaded: ef below candidates + 1)",
                      xaxis_title="ef (search width)", yaxis_title=f"recall@{k}",
                      yaxis_tickformat=".0%", height=320,
                      margin={"t": 50, "b": 10, "l": 10, "r": 10},
                      legend={"orientation": "h", "y": -0.3})
    return fig
