"""The benchmark command at a tiny scale: it runs and writes its JSON and Markdown."""

import json

from conftest import IN_CI
from recommender.cli import main
from recommender.tools.bench import TARGETS, check_targets, percentiles


def test_bench_tiny_writes_json_and_markdown(tmp_path, capsys):
    out, data = tmp_path / "bench", tmp_path / "synth"
    code = main(["bench", "--scale", "tiny", "--out", str(out), "--data-root", str(data),
                 "--users", "20", "--curve-dims", "8", "--curve-candidates", "20",
                 "--dim", "8", "--n-candidates", "40", "--ef", "50"])
    assert code == 0
    result = json.loads((out / "tiny.json").read_text())
    assert result["build"]["shape"][0] == 400
    assert result["build"]["matrix_mib"] > 0
    # Every algorithm the engine offers is timed, except random.
    timed = set(result["recommend_ms"])
    assert {"popularity", "content", "user-user", "hybrid", "mf", "ease"} <= timed
    assert "random" not in result["recommend_ms"]
    assert all(v["n"] == 20 for v in result["recommend_ms"].values())
    # 400 users: the index and the inverted index together find the exact neighbours.
    assert result["neighbours"]["recall"] >= 0.95
    assert result["neighbours"]["exact_ms"]["n"] == 20
    assert [(r["dim"], r["n_candidates"]) for r in result["curve"]] == [(8, 20)]
    assert set(result["targets"]) == set(TARGETS)
    # Ingest and the warm start run for real, in child processes.
    assert result["ingest_sqlite"]["status"] == "ok"
    assert result["ingest_sqlite"]["rows"] == result["build"]["rows"]
    assert result["ingest_sqlite"]["peak_rss_mib"] > 0
    if IN_CI or result["ingest_postgresql"]["status"] != "unavailable":
        assert result["ingest_postgresql"]["status"] == "ok", result["ingest_postgresql"]
    assert result["warm_load"]["status"] == "ok", result["warm_load"]
    assert result["warm_load"]["index"] == "loaded"
    assert result["warm_load"]["matrix"] == "loaded from the cache"
    assert result["warm_load"]["peak_rss_mib"] > 0
    # The cold build of every model, in its own child, with its own peak.
    assert result["warm_load"]["cold_build_seconds"] > 0
    assert result["warm_load"]["cold_peak_rss_mib"] > 0
    # Two warm processes on one cache: each measured from smaps_rollup, sharing pages.
    two = result["two_processes"]
    assert two["status"] == "ok", two
    assert len(two["each"]) == 2
    for proc in (two["alone"], *two["each"]):
        assert 0 < proc["private_mib"] <= proc["rss_mib"]
        assert 0 < proc["pss_mib"] <= proc["rss_mib"]
    assert two["combined_pss_mib"] == round(sum(p["pss_mib"] for p in two["each"]), 1)
    assert 0 < two["combined_pss_over_one"] < 2.5
    figures = result["figures"]
    # Requests that run the ranker (it, and the hybrid over it for a user or a list) are
    # held to its own bounds; every other algorithm to the general ones.
    rec = result["recommend_ms"]
    over_ranker = [k for k in rec if k.split(" ")[0] in ("ranker", "hybrid")]
    assert {"ranker", "hybrid", "hybrid (liked= list)"} <= set(over_ranker)
    assert figures["recommend_ranker_p50_ms"] == max(rec[k]["p50"] for k in over_ranker)
    assert figures["recommend_ranker_p95_ms"] == max(rec[k]["p95"] for k in over_ranker)
    assert figures["recommend_p50_ms_max"] == max(
        v["p50"] for k, v in rec.items() if k not in over_ranker)
    assert figures["cold_build_seconds"] == result["warm_load"]["cold_build_seconds"]
    assert figures["two_process_pss_over_one"] == two["combined_pss_over_one"]
    ref = result["pg_copy_reference"]
    if IN_CI or ref["status"] != "unavailable":
        assert ref["status"] == "ok", ref
        assert ref["rows"] == result["build"]["rows"]
        assert figures["pg_ingest_rows_per_second"] == \
            result["ingest_postgresql"]["rows_per_second"]
    markdown = (out / "tiny.md").read_text()
    assert "plain keyed `COPY` of the CSV" in markdown and "Two warm processes" in markdown
    assert "| cold_build_seconds |" in markdown
    assert "warm start: `from_settings` in a new process" in markdown
    assert "| CSR matrix |" in markdown and "Recall / latency curve" in markdown
    assert (data / "tiny" / "rating.csv").exists()
    assert "targets missed" in capsys.readouterr().out


def test_percentiles_and_target_checks():
    p = percentiles([1.0, 2.0, 3.0, 4.0, 100.0])
    assert p["p50"] == 3.0 and p["n"] == 5 and p["p99"] > p["p95"] > p["p50"]
    checked = check_targets({"matrix_seconds": 2.0, "neighbour_recall": 0.9})
    assert checked["matrix_seconds"]["met"] is True
    assert checked["neighbour_recall"]["met"] is False
    assert checked["search_p50_ms"]["met"] is None
