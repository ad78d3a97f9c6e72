"""The seed sweep behind `./vp claims`: execute notebooks headless and offline at several seeds,
collect every `vp_utils.lab.claims.claim` they make, and write the table of claims.

    python tools/claims_sweep.py [NOTEBOOK ...] [--seeds 0-4] [--jobs 2]

Each notebook's results merge into docs/claims.json as soon as its seeds are done (one entry per
notebook, replaced when it is swept again), and docs/claims.md is rendered from it. Every executed
run, outputs included, is kept in artifacts/claims/NAME-seedN.ipynb. Each entry names the notebook
version it was measured on, a hash of its code cells, so a test can tell when a notebook changed
after its rows were measured.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import run_times  # beside this file

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
TABLE_JSON = REPO / "docs" / "claims.json"
TABLE_MD = REPO / "docs" / "claims.md"
EXECUTED = REPO / "artifacts" / "claims"  # git-ignored
GUARD = REPO / "tests" / "offline"  # its sitecustomize.py refuses any connection off the machine
sys.path.append(str(GUARD))  # for its network_namespace.py
ROBUST_SDS = 2  # a claim is robust when its mean excess is at least this many seed sds
ROBUST_WORDS = {True: "yes", False: "**no**", None: "needs 3+ seeds"}


def notebook_version(path: Path, text: str | None = None) -> str:
    """A hash of a notebook's code cells: prose edits keep it, any code edit changes it."""
    cells = json.loads(Path(path).read_text() if text is None else text)["cells"]
    code = "\n\x00\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return hashlib.sha256(code.encode()).hexdigest()[:12]


def parse_seeds(text: str) -> list[int]:
    """'0-4' -> [0, 1, 2, 3, 4]; '0,3,101' -> [0, 3, 101]."""
    seeds = []
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    if not seeds:
        raise ValueError(f"no seeds in {text!r}")
    return seeds


def run_notebook(path: Path, text: str, seed: int, threads: int) -> dict:
    """Execute one notebook (`text`, its file as read when the sweep began) at one seed; every cell
    runs even after a failed one, so that every claim is recorded. Returns its claims, the cells
    that raised, and the wall time."""
    import nbformat
    from nbclient import NotebookClient
    from network_namespace import AsyncNamespacedKernelManager

    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "claims.jsonl"
        env = {"VP_SEED": str(seed), "VP_STATIC": "1", "VP_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
               "VP_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "VP_CLAIMS_LOG": str(log),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(GUARD), os.environ.get("PYTHONPATH")]))}
        notebook = nbformat.reads(text, as_version=4)
        # the kernel runs in a network namespace of its own where the machine can make one
        client = NotebookClient(notebook, timeout=1800, allow_errors=True, kernel_name="python3",
                                kernel_manager_class=AsyncNamespacedKernelManager,
                                resources={"metadata": {"path": str(path.parent)}})
        kernel_env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | env  # Agg silences plt.show()
        start = time.perf_counter()
        client.execute(env=kernel_env)
        seconds = time.perf_counter() - start
        claims = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    EXECUTED.mkdir(parents=True, exist_ok=True)  # each run's outputs, to read what a seed printed
    nbformat.write(notebook, EXECUTED / f"{path.stem}-seed{seed}.ipynb")
    errors = [f"cell {i}: {out['ename']}: {out['evalue'][:300]}"
              for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    return {"seconds": round(seconds, 1), "claims": claims, "errors": errors}


def sweep(paths: list[Path], seeds: list[int], jobs: int):
    """Run every notebook at every seed, `jobs` runs side by side (each on one thread when there are
    two or more); yields (name, entry for the table) as soon as all of a notebook's seeds are done."""
    threads = 1 if jobs > 1 else int(os.environ.get("VP_THREADS") or os.cpu_count() or 1)
    texts = {path: path.read_text() for path in paths}  # what is measured is the code as it was now

    def one(path, seed):
        print(f"claims: {path.name} at seed {seed} ...", flush=True)
        result = run_notebook(path, texts[path], seed, threads)
        failed = [c["name"] for c in result["claims"] if not c["holds"]]
        print(f"claims: {path.name} seed {seed}: {len(result['claims'])} claims, {len(failed)} failed, "
              f"{len(result['errors'])} errors, {result['seconds']:.0f} s", flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {path: {seed: pool.submit(one, path, seed) for seed in seeds} for path in paths}
        for path, runs in futures.items():  # in order; later notebooks keep running meanwhile
            yield path.name, {"version": notebook_version(path, texts[path]), "threads": threads,
                              "runs": {str(seed): future.result() for seed, future in runs.items()}}


def record(name: str, entry: dict) -> None:
    """Merge one notebook's entry into docs/claims.json and re-render docs/claims.md."""
    table = json.loads(TABLE_JSON.read_text()) if TABLE_JSON.exists() else {}
    table[name] = entry
    TABLE_JSON.parent.mkdir(exist_ok=True)
    TABLE_JSON.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    TABLE_MD.write_text(render(table))
    run_times.write_all(name, entry, NOTEBOOKS)  # the header and the README state the time just measured


def summarise(runs: dict) -> list[dict]:
    """One row per claim name: value, baseline and excess over its threshold across seeds."""
    rows: dict[str, dict] = {}
    for seed, run in runs.items():
        for c in run["claims"]:
            row = rows.setdefault(c["name"], {"name": c["name"], "kind": c["kind"], "by_seed": {}})
            row["by_seed"][seed] = c
    for row in rows.values():
        found = list(row["by_seed"].values())
        for key in ("value", "baseline", "threshold", "excess"):
            row[key] = _mean_sd([c[key] for c in found])
        row["passed"] = sum(c["holds"] for c in found)
        row["seeds"] = len(runs)  # a seed whose notebook stopped before the claim counts as failed
        mean, sd = row["excess"]
        # with fewer than three seeds the spread means nothing: robustness is left undecided (None)
        row["robust"] = (row["passed"] == row["seeds"] and mean >= ROBUST_SDS * sd) if len(runs) >= 3 else None
    return list(rows.values())


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def render(table: dict) -> str:
    """docs/claims.md from docs/claims.json."""
    lines = ["# Claims across seeds", "",
             "Written by `./vp claims` (tools/claims_sweep.py); do not edit by hand. Each notebook ran "
             "headless and offline at `VP_SCALE=small` at every seed listed. A claim holds at a seed when "
             "its value clears the threshold the notebook asserts (`factor x baseline ± margin`, or "
             "`within` a tolerance for `claim_near`). *Excess* is how far it cleared it; a claim is "
             f"**robust** when it held at every seed and its mean excess is at least {ROBUST_SDS} sd over "
             "seeds. Numbers are mean ± sd over seeds.", ""]
    every_row = []
    for name in sorted(table):
        entry = table[name]
        rows = summarise(entry["runs"])
        every_row += rows
        seeds = ", ".join(sorted(entry["runs"], key=int))
        minutes = [run["seconds"] / 60 for run in entry["runs"].values()]
        lines += [f"## {name}", "",
                  f"Code version `{entry['version']}` · seeds {seeds} · {entry['threads']} thread(s) · "
                  f"{min(minutes):.1f}–{max(minutes):.1f} min per run", "",
                  "| claim | value | baseline | threshold | excess | seeds passed | robust |",
                  "|---|---|---|---|---|---|---|"]
        for row in rows:
            cells = [_fmt(row[k]) for k in ("value", "baseline", "threshold", "excess")]
            lines.append(f"| {row['name']} | {' | '.join(cells)} | {row['passed']}/{row['seeds']} | "
                         f"{ROBUST_WORDS[row['robust']]} |")
        errors = sorted({f"seed {seed}: {e}" for seed, run in entry["runs"].items() for e in run["errors"]
                         if not e.split(": ", 2)[1].startswith("ClaimFailed")})
        lines += ["", *(f"- error, {e}" for e in errors), ""] if errors else [""]
    lines[1:1] = ["", f"**{len(every_row)} claims in {len(table)} notebooks; "
                      f"{sum(bool(r['robust']) for r in every_row)} robust; {sum(r['passed'] for r in every_row)} of "
                      f"{sum(r['seeds'] for r in every_row)} claim-seeds passed.**"]
    return "\n".join(lines).rstrip() + "\n"


def _fmt(pair) -> str:
    mean, sd = pair
    return f"{mean:.3g} ± {sd:.2g}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="vp claims", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 0,1,101 (default 0-4)")
    parser.add_argument("--jobs", type=int, default=1, help="runs side by side, one thread each (default 1: one run on every core)")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    failed = 0
    for name, entry in sweep(paths, parse_seeds(args.seeds), args.jobs):
        record(name, entry)  # written as soon as it is done: a stopped sweep keeps the notebooks it finished
        failed += sum(row["passed"] < row["seeds"] for row in summarise(entry["runs"]))
    print(f"claims: wrote {TABLE_MD.relative_to(REPO)}; {failed} claim(s) failed at some seed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
