"""Plotly figures of evaluation results (used by the Tune page; no streamlit here)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from recommender.evaluation.protocol import best_weights

#: Human labels of the metric columns.
LABELS = {"ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "hit_rate": "Hit rate",
          "map": "MAP", "coverage": "Catalogue coverage", "novelty": "Novelty (bits)",
          "diversity": "Genre diversity"}


def weight_curve(table: pd.DataFrame, metric: str, segment: str, current_weight: float,
                 k: int) -> go.Figure:
    """``metric`` of the hybrid against its weight, with the pure algorithms as flat lines.

    The current weight is a dashed vertical line; the best weight a star.
    """
    rows = table[table["segment"] == segment]
    hybrid = rows[rows["algorithm"] == "hybrid"].sort_values("weight")
    fig = go.Figure()
    fig.add_scatter(x=hybrid["weight"], y=hybrid[metric], mode="lines+markers", name="hybrid")
    for _, row in rows[rows["algorithm"] != "hybrid"].iterrows():
        fig.add_hline(y=row[metric], line_dash="dot", line_width=1,
                      annotation_text=row["variant"], annotation_position="top left")
    best = best_weights(table, metric)
    best = best[best["segment"] == segment]
    if len(best):
        fig.add_scatter(x=best["weight"], y=best[metric], mode="markers", name="best weight",
                        marker={"symbol": "star", "size": 16, "color": "gold",
                                "line": {"width": 1, "color": "black"}})
    fig.add_vline(x=current_weight, line_dash="dash", line_color="red",
                  annotation_text=f"current {current_weight:.2f}")
    fig.update_layout(xaxis_title="collaborative weight w (0 = content, 1 = user-user)",
                      yaxis_title=f"{LABELS.get(metric, metric)}@{k}", height=420,
                      margin={"t": 30})
    return fig


def tradeoff_chart(table: pd.DataFrame, accuracy: str, other: str, segment: str,
                   k: int) -> go.Figure:
    """Accuracy against coverage or novelty: one point per algorithm and hybrid weight."""
    rows = table[table["segment"] == segment]
    fig = go.Figure()
    hybrid = rows[rows["algorithm"] == "hybrid"].sort_values("weight")
    fig.add_scatter(x=hybrid[other], y=hybrid[accuracy], mode="lines+markers+text",
                    text=[f"{w:.1f}" for w in hybrid["weight"]], textposition="top center",
                    name="hybrid (label = weight)")
    others = rows[rows["algorithm"] != "hybrid"]
    fig.add_scatter(x=others[other], y=others[accuracy], mode="markers+text",
                    text=others["variant"], textposition="bottom center", name="alone",
                    marker={"size": 10, "symbol": "diamond"})
    fig.update_layout(xaxis_title=LABELS.get(other, other),
                      yaxis_title=f"{LABELS.get(accuracy, accuracy)}@{k}", height=420,
                      margin={"t": 30})
    return fig
