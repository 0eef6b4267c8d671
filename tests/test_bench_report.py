"""The benchmark's end-to-end verdict: the fastest pair and the median run pair, each against
the target (bench/__main__.py e2e_report)."""

from __future__ import annotations

from typing import Any

from bench.__main__ import e2e_report


def _raw(ratios: list[tuple[float, float]], median: float | None) -> dict[str, Any]:
    runs = [{"flow_wall_s": f, "reference_wall_s": r, "ratio": round(r / f, 3)} for f, r in ratios]
    size = {
        "pages": 10000, "prefect_api": "server", "runs": runs, "ratio_pairs_median": median,
        "ours": {"wall_s": 100.0, "articles_per_hour": 360000, "peak_memory_gib": 0.8,
                 "stage_seconds": {"fetch": 90.0, "total": 95.0}, "prefect_parts_s": {},
                 "prefect_overhead_s": 5.0, "prefect_share": 0.05},
    }
    checks = {"e2e_vs_extract": 0.8, "prefect_share": 0.05, "peak_memory_gib": 0.8,
              "e2e_vs_extract_pairs_median": median}
    targets = {"e2e_vs_extract_min": 0.7, "prefect_share_max": 0.1, "peak_memory_max_gib": 2.0,
               "growth_1k_10k_max": 11.0}
    return {"sizes": [size], "ephemeral": None, "checks": checks, "targets": targets}


def test_the_median_run_pair_is_judged_beside_the_fastest_pair() -> None:
    lines = e2e_report(_raw([(100.0, 80.0), (130.0, 80.0), (140.0, 95.0)], 0.679))
    text = "\n".join(lines)
    assert "median pair 0.679" in text
    assert "target end to end / extraction alone: 0.8 (>= 0.7) met" in text
    assert "target end to end / extraction alone, median run pair: 0.679 (>= 0.7) MISSED" in text


def test_a_report_without_a_median_still_renders() -> None:
    lines = e2e_report(_raw([(100.0, 80.0)], None))
    assert not any("median" in line for line in lines)
