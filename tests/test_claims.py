"""The claim helper, the seed sweep's table, and that the table cannot go stale."""
import json
import sys
from pathlib import Path

import pytest

from vp_utils.lab.claims import ClaimFailed, claim, claim_near

REPO = Path(__file__).parents[1]
sys.path.insert(0, str(REPO / "tools"))
import claims_sweep  # noqa: E402


def test_a_claim_that_holds_returns_its_excess_and_prints_both_numbers(capsys):
    result = claim("probe vs random", 0.62, 0.40, 0.1)
    assert result.holds and result.excess == pytest.approx(0.12)
    assert "0.62 > 0.5 (baseline 0.4)" in capsys.readouterr().out


def test_a_failed_claim_names_the_value_the_baseline_and_the_threshold():
    with pytest.raises(ClaimFailed, match=r"probe vs random: 0.45 > 0.5 \(baseline 0.4\)"):
        claim("probe vs random", 0.45, 0.40, 0.1)


def test_lower_is_better_and_factor_scale_the_baseline():
    assert claim("mse", 0.7, 1.0, factor=0.8, higher=False).threshold == pytest.approx(0.8)
    with pytest.raises(ClaimFailed):
        claim("mse", 0.85, 1.0, factor=0.8, higher=False)
    with pytest.raises(ClaimFailed):  # margin moves a lower-is-better threshold down
        claim("rmse", 0.95, 1.0, 0.1, higher=False)


def test_claim_near_holds_inside_its_tolerance_only():
    assert claim_near("at chance", 0.55, 0.5, 0.1).holds
    with pytest.raises(ClaimFailed, match="at chance: 0.65 within 0.1 of 0.5"):
        claim_near("at chance", 0.65, 0.5, 0.1)


def test_a_nan_value_fails_instead_of_comparing_false():
    with pytest.raises(ClaimFailed, match="the value is nan"):
        claim("probe", float("nan"), 0.4)


@pytest.mark.parametrize("options", [{"margin": -0.1}, {"factor": 0}])
def test_nonsense_margins_are_refused(options):
    with pytest.raises(ValueError):
        claim("probe", 0.6, 0.4, **options)


def test_claims_are_recorded_when_the_sweep_asks(tmp_path, monkeypatch):
    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("VP_CLAIMS_LOG", str(log))
    claim("holds", 2.0, 1.0)
    assert not claim("fails", 0.5, 1.0).holds  # recorded, and the notebook runs on to its next claims
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["name"], r["holds"], r["excess"]) for r in records] == [("holds", True, 1.0), ("fails", False, -0.5)]


def test_seed_ranges_parse():
    assert claims_sweep.parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert claims_sweep.parse_seeds("0,3,101") == [0, 3, 101]
    assert claims_sweep.parse_seeds("1-2,7") == [1, 2, 7]


def _run(*records):
    return {"seconds": 60.0, "errors": [], "claims": [
        {"name": name, "value": v, "baseline": b, "threshold": b, "kind": "higher", "holds": v > b, "excess": v - b}
        for name, v, b in records]}


def test_summary_counts_passes_and_judges_robustness_from_the_spread():
    runs = {"0": _run(("steady", 1.0, 0.5), ("noisy", 0.6, 0.5)),
            "1": _run(("steady", 1.1, 0.5), ("noisy", 0.4, 0.5)),
            "2": _run(("steady", 1.0, 0.5), ("noisy", 0.9, 0.5))}
    rows = {row["name"]: row for row in claims_sweep.summarise(runs)}
    assert rows["steady"]["passed"] == 3 and rows["steady"]["robust"] is True
    assert rows["noisy"]["passed"] == 2 and rows["noisy"]["robust"] is False
    assert rows["steady"]["value"] == pytest.approx((1.0333, 0.0577), abs=1e-3)


def test_a_claim_missing_at_a_seed_counts_as_failed_there():
    runs = {"0": _run(("late claim", 1.0, 0.5)), "1": _run(), "2": _run(("late claim", 1.0, 0.5))}
    (row,) = claims_sweep.summarise(runs)
    assert (row["passed"], row["seeds"], row["robust"]) == (2, 3, False)


def test_the_notebook_version_follows_code_only(tmp_path):
    def notebook(code, prose):
        path = tmp_path / "nb.ipynb"
        path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": [prose]},
                                              {"cell_type": "code", "source": [code]}]}))
        return claims_sweep.notebook_version(path)
    assert notebook("x = 1", "intro") == notebook("x = 1", "a better intro")
    assert notebook("x = 1", "intro") != notebook("x = 2", "intro")


# ---- the committed table ----

TABLE = json.loads(claims_sweep.TABLE_JSON.read_text())
NOTEBOOKS = sorted(claims_sweep.NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("name", sorted(TABLE))
def test_the_table_was_measured_on_the_notebook_as_it_is(name):
    recorded, current = TABLE[name]["version"], claims_sweep.notebook_version(claims_sweep.NOTEBOOKS / name)
    assert recorded == current, (f"{name}'s code changed after its claims were measured ({recorded} -> {current}): "
                                 f"run ./vp claims notebooks/{name}")


def test_the_markdown_table_is_rendered_from_the_json():
    assert claims_sweep.TABLE_MD.read_text() == claims_sweep.render(TABLE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_rows_at_five_seeds_or_more(path):
    assert path.name in TABLE, f"{path.name} has never been swept: run ./vp claims {path.relative_to(REPO)}"
    assert len(TABLE[path.name]["runs"]) >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_assert_their_findings_through_claims(path):
    """Bare asserts remain for exact checks (shapes, equality with timm); measured findings use claim()."""
    code = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert "claim(" in code


def test_a_claim_as_a_cells_last_value_adds_no_second_line(capsys):
    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance()
    shell.user_ns["claim"] = claim
    shell.run_cell('claim("probe vs random", 0.62, 0.40, 0.1)')
    out = capsys.readouterr().out
    assert out.count("probe vs random") == 1 and "Claim(" not in out
