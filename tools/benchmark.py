"""Time the curriculum on this machine: each notebook's wall time at VP_SCALE=small, and each trainer
recipe's milliseconds per step with the share of it spent waiting for batches. A script, not a test:
it prints markdown tables headed by the machine they were measured on.

    python tools/benchmark.py                                  # every notebook, then every recipe
    python tools/benchmark.py --notebooks 01,03 --recipes mae,dino
    python tools/benchmark.py --skip-notebooks --batch-size 256 --workers 4

Notebooks run offline with static figures (VP_STATIC=1, VP_OFFLINE=1, MPLBACKEND=Agg), each in a
fresh process from the notebooks folder: through a Jupyter kernel (nbclient) when nbclient and
ipykernel are installed, else as a plain Python script made from the notebook's code cells. Recipes
train in this process through the trainer itself for 1 + --steps steps; the first step (worker
start-up, first kernels) is left out of the figures.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_ENV = {"VP_SCALE": "small", "VP_STATIC": "1", "VP_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # nbclient colours the error it ends with
KERNEL_RUN = """import sys, nbformat
from nbclient import NotebookClient
notebook = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(notebook, timeout=None, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


def machine() -> str:
    """One line naming the CPU, its cores, the GPU (if any) and the torch and Python versions."""
    import torch

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return (f"{cpu_model()}, {os.cpu_count()} cores; GPU: {gpu}; torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --- notebooks ---

def pick_notebooks(spec: str | None) -> list[Path]:
    """The notebooks named in `spec` ("01,03" or names), in path order; all when it is None."""
    every = sorted(NOTEBOOKS.glob("*.ipynb"))
    if spec is None:
        return every
    picked = []
    for name in (part.strip() for part in spec.split(",") if part.strip()):
        matches = [path for path in every if path.stem.split("_")[0] == name or path.stem == name.removesuffix(".ipynb")]
        if not matches:
            raise ValueError(f"--notebooks: no notebook {name!r}; expected numbers such as 01,03 or names such as "
                             f"{every[0].stem if every else '01_resnet'}")
        picked += matches
    return [path for path in every if path in picked]


def notebook_script(path: Path) -> str:
    """The notebook's code cells as one Python script, a comment line before each. IPython-only lines
    (%magics, !shell) become comments, so the script runs without IPython."""
    cells = json.loads(Path(path).read_text())["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    return "".join(f"# In[{number}]:\n{_plain_python(source)}\n\n" for number, source in enumerate(code, 1))


def _plain_python(source: str) -> str:
    return "\n".join(f"# {line}" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def kernel_available() -> bool:
    return all(importlib.util.find_spec(name) for name in ("nbclient", "nbformat", "ipykernel"))


def pick_runner(say=print) -> str:
    """"kernel" where nbclient and ipykernel are installed; else "script", said in one line."""
    if kernel_available():
        return "kernel"
    say("benchmark: nbclient or ipykernel is not installed, so notebooks run as plain Python scripts made "
        "from their code cells (no kernel start-up counted)")
    return "script"


def run_notebook(path: Path, runner: str, timeout: float) -> tuple[float, str]:
    """Execute one notebook in a fresh process; its wall time in seconds and "ok" or why it failed."""
    env = {**os.environ, **NOTEBOOK_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                                     os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as scratch:
        if runner == "kernel":
            command = [sys.executable, "-c", KERNEL_RUN, str(path), str(path.parent)]
        else:
            script = Path(scratch) / f"{path.stem}.py"
            script.write_text(notebook_script(path))
            command = [sys.executable, str(script)]
        began = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=path.parent, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return time.perf_counter() - began, f"stopped after {timeout:.0f} s"
    seconds = time.perf_counter() - began
    lines = [ANSI_COLOUR.sub("", line).strip() for line in done.stderr.splitlines() if line.strip()]
    return seconds, "ok" if done.returncode == 0 else f"failed: {lines[-1] if lines else done.returncode}"[:120]


def notebook_table(rows: list[tuple[str, float, str]], runner: str) -> str:
    lines = [f"| notebook ({runner}) | minutes | result |", "|---|---:|---|"]
    lines += [f"| {name} | {seconds / 60:.1f} | {result} |" for name, seconds, result in rows]
    lines.append(f"| all | {sum(seconds for _, seconds, _ in rows) / 60:.1f} | |")
    return "\n".join(lines)


# --- recipes ---

def time_recipe(recipe: str, steps: int, batch_size: int, workers: int | None = None, device: str | None = None,
                amp: bool = False) -> dict:
    """Train `recipe` for 1 + `steps` steps in a scratch folder; its ms per step and the share of step
    time spent waiting for batches, over all steps but the first, and the workers it used."""
    import torch

    from vp_utils.training.trainer import default_workers, parse_args, train

    if workers is None:
        workers = default_workers(torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))
    with tempfile.TemporaryDirectory() as out:
        argv = [recipe, "--out", out, "--steps", str(steps + 1), "--batch-size", str(batch_size), "--warmup", "1",
                "--workers", str(workers), *(["--device", device] if device else []), *(["--amp"] if amp else [])]
        args = parse_args(argv)  # a refused argument says so in one line on stderr
        with contextlib.redirect_stderr(io.StringIO()):  # the progress bar
            last = train(args)
    seconds = last["seconds"] - last["first_step_seconds"]
    waited = last["data_seconds"] - last["first_step_data_seconds"]
    return {"ms": 1000 * seconds / steps, "data_share": waited / seconds, "workers": workers}


def recipe_table(rows: list[tuple[str, int, dict | str]]) -> str:
    lines = ["| recipe | batch | workers | ms per step | waiting for batches |", "|---|---:|---:|---:|---:|"]
    for name, batch, timing in rows:
        if isinstance(timing, str):
            lines.append(f"| {name} | {batch} | | {timing} | |")
        else:
            lines.append(f"| {name} | {batch} | {timing['workers']} | {timing['ms']:.0f} | {timing['data_share']:.0%} |")
    return "\n".join(lines)


def _one_line(error: Exception) -> str:
    return f"failed: {type(error).__name__}: {(str(error).strip().splitlines() or [''])[0]}"[:120]


# --- command line ---

def parse_args(argv=None) -> argparse.Namespace:
    from vp_utils.training.recipes import RECIPES

    parser = argparse.ArgumentParser(prog="python tools/benchmark.py", description=__doc__.split("\n")[0])
    parser.add_argument("--notebooks", help="comma-separated numbers or names (default: all)")
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per notebook")
    parser.add_argument("--recipes", help=f"comma-separated, from {', '.join(sorted(RECIPES))} (default: all)")
    parser.add_argument("--skip-recipes", action="store_true")
    parser.add_argument("--steps", type=int, default=40, help="timed steps per recipe, after one warm-up step")
    parser.add_argument("--batch-size", type=int, help="default: 256 on a CUDA GPU, 32 on a CPU")
    parser.add_argument("--workers", type=int, help="batch-preparing processes (default: the trainer's)")
    parser.add_argument("--device", help="default: the GPU, else the CPU")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    args = parser.parse_args(argv)
    try:
        args.notebook_paths = [] if args.skip_notebooks else pick_notebooks(args.notebooks)
    except ValueError as error:
        parser.error(str(error))
    args.recipe_names = [] if args.skip_recipes else (args.recipes.split(",") if args.recipes else sorted(RECIPES))
    unknown = [name for name in args.recipe_names if name not in RECIPES]
    if unknown:
        parser.error(f"--recipes: no recipe {unknown[0]!r}; expected some of {', '.join(sorted(RECIPES))}")
    if args.steps < 1:
        parser.error(f"--steps must be positive, got {args.steps}")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    from vp_utils.lab.environment import apply_threads

    apply_threads(torch.get_num_threads())  # VP_THREADS, as the trainer's command line
    print(f"Machine: {machine()}\n", flush=True)
    if args.notebook_paths:
        runner = pick_runner()
        rows = []
        for path in args.notebook_paths:
            rows.append((path.stem, *run_notebook(path, runner, args.timeout)))
            print(f"benchmark: {path.stem} {rows[-1][1] / 60:.1f} min, {rows[-1][2]}", file=sys.stderr, flush=True)
        print(notebook_table(rows, runner) + "\n", flush=True)
    if args.recipe_names:
        cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
        batch = args.batch_size or (256 if cuda else 32)
        rows = []
        for name in args.recipe_names:
            try:
                timing = time_recipe(name, args.steps, batch, args.workers, args.device, args.amp)
            except (Exception, SystemExit) as error:  # one recipe that cannot run leaves the others' figures
                timing = _one_line(error)
            rows.append((name, batch, timing))
        print(f"{args.steps} steps per recipe{', bf16 autocast' if args.amp else ''}:\n")
        print(recipe_table(rows), flush=True)


if __name__ == "__main__":
    main()
