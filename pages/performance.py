"""Performance: per-stage timings, latency per algorithm, memory, and index vs exact search."""

import pandas as pd
import plotly.express as px
import streamlit as st

import app_state
from dashboard import charts, choices, state, summaries
from dashboard.explain import index_explanation
from recommender.core.profiling import PROFILER
from recommender.errors import RecommenderError
from recommender.tools import measure

engine = app_state.engine_or_stop()
session = st.session_state
algorithms = choices.algorithm_choices(engine)
state.keep({"perf_users": 30, "perf_algorithms": algorithms,
            "perf_ef": engine.knn.config.ef, "perf_candidates": engine.knn.config.n_candidates,
            "perf_k": 20, "perf_ann_users": 20})
MIB = 2**20

st.title("Performance")

# ------------------------------------------------------------------ latest requests
st.subheader("Where the time goes: the latest requests")
breakdown = summaries.request_breakdown(PROFILER.records(), last=20)
if breakdown.empty:
    st.info("No recommendation has been requested in this process yet: get some on the "
            "Recommend page or run the latency sample below.")
else:
    fig = px.bar(breakdown, x="request", y="ms", color="stage",
                 title="Milliseconds per stage, latest 20 requests (oldest left)")
    fig.update_layout(margin=dict(t=50, b=10), height=360, xaxis_title="request")
    st.plotly_chart(fig, config=charts.CHART_CONFIG)

# ------------------------------------------------------------------ latency sample
st.subheader("Latency per algorithm")
c1, c2, c3 = st.columns([2, 4, 2], vertical_alignment="bottom")
sample_size = c1.slider("Users in the sample", 10, 200, step=10, key="perf_users")
chosen = c2.multiselect("Algorithms", algorithms, key="perf_algorithms",
                        format_func=choices.algorithm_label)
if c3.button("Run the latency sample", icon=":material/play_arrow:", type="primary",
             width="stretch"):
    if not chosen:
        st.warning("Pick at least one algorithm.")
    else:
        users = measure.sample_users(engine, sample_size)
        with st.spinner(f"Timing {len(users)} users × {len(chosen)} algorithms…"):
            session.perf_latency = measure.latency_sample(engine, users, chosen, n=10)
        st.rerun()  # redraw the per-request chart above with these requests in it
sample = session.get("perf_latency")
if sample is None:
    st.caption("Press the button to time top-10 recommendations for a random sample of users.")
else:
    summary = measure.latency_summary(sample)
    left, right = st.columns([3, 2])
    fig = px.box(sample, x="algorithm", y="ms", points="outliers",
                 title=f"Latency of top-10 requests over {sample['user_id'].nunique()} users")
    fig.update_layout(margin=dict(t=50, b=10), height=360)
    left.plotly_chart(fig, config=charts.CHART_CONFIG)
    long = summary.melt(id_vars="algorithm", value_vars=["p50_ms", "p95_ms"],
                        var_name="percentile", value_name="ms")
    fig = px.bar(long, x="algorithm", y="ms", color="percentile", barmode="group",
                 title="p50 and p95")
    fig.update_layout(margin=dict(t=50, b=10), height=360)
    right.plotly_chart(fig, config=charts.CHART_CONFIG)
    st.dataframe(summary, hide_index=True, column_config={
        c: st.column_config.NumberColumn(format="%.1f") for c in ("p50_ms", "p95_ms", "mean_ms")})

# ------------------------------------------------------------------ memory
st.subheader("Memory")
stats = engine.stats()
c1, c2, c3, c4 = st.columns(4)
c1.metric("Sparse CSR matrix", f"{stats['matrix_bytes'] / MIB:.1f} MiB",
          help=f"{stats['ratings']:,} stored ratings (data, column indices, row pointers)")
c2.metric("Dense equivalent", f"{stats['dense_bytes'] / MIB:,.0f} MiB",
          help=f"{stats['users']:,} × {stats['anime']:,} float32 cells")
c3.metric("Saving", f"{stats['dense_bytes'] / max(stats['matrix_bytes'], 1):,.0f}×")
c4.metric("hnswlib index", f"{stats['index_bytes'] / MIB:.1f} MiB",
          help=f"{stats['index_elements']:,} users × {stats['vector_dim']} dimensions + graph")
memory = pd.DataFrame({"structure": ["CSR matrix", "dense matrix", "hnswlib index"],
                       "MiB": [stats["matrix_bytes"] / MIB, stats["dense_bytes"] / MIB,
                               stats["index_bytes"] / MIB]})
fig = px.bar(memory, x="MiB", y="structure", orientation="h", log_x=True, text_auto=".1f",
             title="Memory (log scale)")
fig.update_layout(margin=dict(t=50, b=10), height=260)
st.plotly_chart(fig, config=charts.CHART_CONFIG)


# ------------------------------------------------------------------ ANN vs exact
@st.fragment
def ann_comparison() -> None:
    """Live: reruns on its own when a slider moves, not the whole page."""
    st.subheader("Index search against exact search (live)")
    st.caption("The index proposes candidates, which are re-ranked by exact cosine. Recall: "
               "share of the exact top-k found; a user as similar as the k-th exact "
               "neighbour counts as found (ties at the cut-off are arbitrary).")
    c1, c2, c3, c4 = st.columns(4)
    ef = c1.slider("ef (search width)", 10, 500, step=10, key="perf_ef")
    candidates = c2.slider("Candidates re-ranked", 10, 500, step=10, key="perf_candidates")
    k = c3.slider("k", 5, 50, step=5, key="perf_k")
    n_users = c4.slider("Users", 5, 50, step=5, key="perf_ann_users")
    if candidates < k:
        st.warning(f"Candidates ({candidates}) must be at least k ({k}); using {k}.")
        candidates = k
    users = measure.sample_users(engine, n_users, random_state=1)
    try:
        result = measure.ann_vs_exact(engine, users, k=k, ef=ef, n_candidates=candidates)
        efs = sorted({k + 1, 50, 100, 200, 400, 500, ef})
        sweep = measure.ef_sweep(engine, users, k=k, efs=efs, n_candidates=candidates)
    except RecommenderError as exc:
        st.error(f"Could not compare: {app_state.md_escape(exc)}")
        return
    s = result["summary"]
    m1, m2, m3, m4 = st.columns(4)
    m1.metric(f"Recall@{k}, re-ranked", f"{s['recall_reranked']:.1%}")
    m2.metric(f"Recall@{k}, index alone", f"{s['recall_index_only']:.1%}",
              help="The index's own top-k by compressed-vector cosine, without the re-rank.")
    m3.metric("Index search", f"{s['ann_ms_mean']:.1f} ms",
              help=f"mean; p95 {s['ann_ms_p95']:.1f} ms")
    m4.metric("Exact search", f"{s['exact_ms_mean']:.1f} ms",
              help=f"mean; p95 {s['exact_ms_p95']:.1f} ms")
    st.markdown(index_explanation(
        engine.stats(), engine.knn.config, s, candidates))
    width = max(ef, candidates + 1)
    if ef <= candidates:
        st.info(f"The re-ranked search is {width} wide, set by the candidates, not by ef "
                f"({ef}): ef moves only the index-alone recall here. Lower the candidates "
                f"below {ef} to see ef act on the re-ranked path.", icon=":material/info:")
    left, right = st.columns(2)
    left.plotly_chart(charts.ef_sweep_chart(sweep, ef, candidates, k),
                      config=charts.CHART_CONFIG)
    per_user = result["per_user"].melt(id_vars="user_id", value_vars=["ann_ms", "exact_ms"],
                                       var_name="search", value_name="ms")
    fig = px.strip(per_user, x="search", y="ms", title="Milliseconds per user")
    fig.update_layout(margin=dict(t=50, b=10), height=320)
    right.plotly_chart(fig, config=charts.CHART_CONFIG)


ann_comparison()

# ------------------------------------------------------------------ build stages
st.subheader("Build and load stages")
stages = summaries.build_stages(PROFILER)
if stages.empty:
    st.caption("No build or load stage has run in this process yet.")
else:
    st.plotly_chart(charts.build_stages_chart(stages), config=charts.CHART_CONFIG)
    st.caption("For developers: the latest run of each stage of building or loading the "
               "engine in this server process.")
