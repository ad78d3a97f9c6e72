"""Put the command-line trainer through the faults a long run meets, and say how each one ends.

    python tools/trainer_faults.py

Every fault runs the real trainer (`vp_utils.training.trainer.main`, the entry point of
`python -m vp_utils.training.trainer`; a child process where the fault is a SIGKILL) on a tiny `mae` run
(6 steps of 4 scenes) in a temporary folder, on one thread, in well under two minutes. A full disk
is a real ENOSPC: the file the trainer stages its write in is a link to /dev/full. Outcomes:

    clear error    a non-zero exit with one error line and no traceback, the run on disk untouched
                   (a diverged run: its checkpoint finite and intact)
    survived       exit 0 and the run as if nothing had happened: loss for loss and weight for
                   weight what one uninterrupted run computes
    unclear error  a traceback, or not one error line
    damage         the run on disk changed although the trainer refused
    silent damage  exit 0 and a wrong run, or a refusal that should have been
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("VP_THREADS", "1")

import torch  # noqa: E402  (after VP_THREADS, which the trainer reads)

from vp_utils.training import trainer  # noqa: E402
from vp_utils.training.checkpoint import read_checkpoint  # noqa: E402

RUN = ["mae", "--steps", "6", "--batch-size", "4", "--warmup", "1"]
LONG = ["mae", "--steps", "20", "--batch-size", "4", "--warmup", "1"]  # long enough to be killed part-way
ERROR = f"{trainer.PROG}: error: "


@dataclass
class Result:
    status: int | str
    stderr: str

    @property
    def errors(self) -> list[str]:
        return [line[len(ERROR):] for line in self.stderr.splitlines() if line.startswith(ERROR)]

    @property
    def notes(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith(f"{trainer.PROG}: ")
                and not line.startswith(ERROR)]


def cli(*argv) -> Result:
    """`python -m vp_utils.training.trainer ARGV` in this process: its exit status and what it wrote to stderr."""
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        try:
            trainer.main([str(a) for a in argv])
            status = 0
        except SystemExit as leave:
            status = leave.code or 0
        except Exception:  # a traceback is an outcome to report, not a reason to stop
            traceback.print_exc(file=err)
            status = "traceback"
    return Result(status, err.getvalue())


def child(*argv) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "vp_utils.training.trainer", *map(str, argv)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def snapshot(folder: Path) -> dict:
    """Every file under `folder` by its hash: what a refused command must leave as it was."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def losses(out: Path) -> list[float]:
    return [float(line.split('"loss": ')[1].split(",")[0]) for line in (out / "metrics.jsonl").read_text().splitlines()]


def same_run(out: Path, reference: Path) -> bool:
    """Loss for loss and weight for weight the reference run."""
    a, b = read_checkpoint(out / "last.pt")["model"], read_checkpoint(reference / "last.pt")["model"]
    return losses(out) == losses(reference) and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def judge_refusal(result: Result, folder: Path, before: dict, kept: tuple[str, ...] | None = None) -> tuple[str, str]:
    """A command the trainer must refuse: clear error when it did so in one line, touching nothing
    (only the files in `kept`, when given)."""
    if result.status == "traceback":
        return "unclear error", result.stderr.strip().splitlines()[-1]
    if result.status == 0:
        return "silent damage", "accepted: " + " | ".join(result.notes) if result.notes else "accepted"
    after = snapshot(folder)
    if kept is not None:
        before, after = ({k: v for k, v in s.items() if k.endswith(kept)} for s in (before, after))
    if after != before:
        return "damage", f"refused, but changed {sorted(set(before.items()) ^ set(after.items()))[0][0]}"
    if len(result.errors) != 1:
        return "unclear error", result.stderr.strip()[-200:]
    return "clear error", f"exit {result.status}: {result.errors[0]}"


def judge_survival(result: Result, out: Path, reference: Path) -> tuple[str, str]:
    if result.status != 0:
        return ("unclear error" if result.status == "traceback" or len(result.errors) != 1 else "clear error",
                (result.errors or result.stderr.strip().splitlines() or ["?"])[-1])
    if not same_run(out, reference):
        return "silent damage", "exit 0, but the run differs from the uninterrupted one"
    note = f" ({result.notes[0].split(': ', 1)[1]})" if result.notes else ""
    return "survived", "equal to the uninterrupted run" + note


class Faults:
    """The faults, each run in a folder of its own under `root`."""

    def __init__(self, root: Path):
        self.root = root
        self.straight = root / "straight"  # the uninterrupted runs every survivor must equal
        self.straight_long = root / "straight_long"
        self.stopped = root / "stopped"  # a run stopped at step 3 of 6: the one the faults hit
        for argv in ([*RUN, "--out", self.straight], [*LONG, "--out", self.straight_long],
                     [*RUN, "--stop-after", 3, "--out", self.stopped]):
            assert cli(*argv).status == 0, argv

    def run(self, name: str) -> Path:
        """A copy of the stopped run."""
        out = self.root / name
        shutil.copytree(self.stopped, out)
        return out

    def refused(self, name: str, *argv, damage=None, kept=None, recipe=RUN) -> tuple[str, str]:
        """Damage the stopped run's copy with `damage(out)`, run the trainer on it, judge the refusal."""
        out = self.run(name)
        if damage:
            damage(out)
        before = snapshot(out)
        return judge_refusal(cli(*recipe, "--out", out, *argv), out, before, kept)

    def bad_argument(self, *argv) -> tuple[str, str]:
        folder = self.root / f"bad{len(list(self.root.glob('bad*')))}"
        folder.mkdir()
        (folder / "a_file").write_text("not a folder")
        argv = [str(a).replace("OUT", str(folder / "run")).replace("FILE", str(folder / "a_file")) for a in argv]
        return judge_refusal(cli(*argv), folder, snapshot(folder))

    def survived(self, name: str, *argv, damage=None) -> tuple[str, str]:
        out = self.run(name)
        if damage:
            damage(out)
        return judge_survival(cli(*RUN, "--out", out, *argv), out, self.straight)

    def diverged(self, name: str, *argv, fresh: bool) -> tuple[str, str]:
        """A run at --lr 1e8 must stop with a non-zero exit, its checkpoint (if any) finite and intact."""
        out = self.root / name if fresh else self.run(name)
        before = snapshot(out) if out.exists() else {}
        result = cli(*RUN, "--out", out, *argv)
        # a new run's folder is its own to write; a resumed one's checkpoint must stay as it was
        verdict = judge_refusal(result, out, snapshot(out) if fresh else before, kept=("last.pt", "last.pt.sha256"))
        if verdict[0] != "clear error" or not (out / "last.pt").exists():
            return verdict
        weights = read_checkpoint(out / "last.pt")["model"].values()
        if not all(w.isfinite().all() for w in weights if w.is_floating_point()):
            return "damage", "the kept checkpoint holds non-finite weights"
        return verdict

    def killed(self, name: str, moment: str, ready, *argv) -> tuple[str, str]:
        """SIGKILL a run as soon as `ready(folder)` holds (`moment` says when that is), then resume it."""
        out = self.root / name
        process, seen = child(*LONG, "--out", out, *argv), False
        while process.poll() is None and not seen:
            seen = ready(out)
            time.sleep(0.0005)
        if not seen:
            return "not run", f"the run ended before {moment}"
        process.send_signal(signal.SIGKILL)
        process.wait()
        kept = read_checkpoint(out / "last.pt")["step"] if (out / "last.pt").exists() else None
        when = f"killed {moment} (last.pt at step {kept})"
        before = snapshot(out)
        result = cli(*LONG, "--out", out, "--resume")
        if kept is None:
            outcome, detail = judge_refusal(result, out, before)
        else:
            outcome, detail = judge_survival(result, out, self.straight_long)
        return outcome, f"{when}; resume: {detail}"

    def disk_full(self, name: str, staged: str) -> tuple[str, str]:
        """Resume the stopped run with `staged` (a temporary file the trainer writes) linked to /dev/full,
        so its write fails with ENOSPC; then resume again with room, which must finish the run exactly."""
        if not Path("/dev/full").exists():
            return "not run", "no /dev/full on this system"
        out = self.run(name)
        (out / staged).symlink_to("/dev/full")
        before = snapshot(out)
        outcome, detail = judge_refusal(cli(*RUN, "--out", out, "--resume"), out, before,
                                        kept=("last.pt", "last.pt.sha256"))
        leftovers = [p.name for p in out.glob("*.partial")]
        if outcome != "clear error" or leftovers:
            return ("damage" if leftovers else outcome), detail + (f"; left {leftovers}" if leftovers else "")
        again = judge_survival(cli(*RUN, "--out", out, "--resume"), out, self.straight)
        return (outcome if again[0] == "survived" else again[0]), f"{detail}; resumed with room: {again[1]}"

    def interrupted_rename(self, name: str) -> tuple[str, str]:
        """A save killed between its two renames: last.pt new, last.pt.sha256 old, the new record staged."""
        out = self.root / name
        assert cli(*RUN, "--stop-after", 2, "--out", out).status == 0
        old_record = (out / "last.pt.sha256").read_bytes()
        assert cli(*RUN, "--stop-after", 1, "--resume", "--out", out).status == 0
        (out / "last.pt.sha256").rename(out / "last.pt.sha256.partial")
        (out / "last.pt.sha256").write_bytes(old_record)
        return judge_survival(cli(*RUN, "--out", out, "--resume"), out, self.straight)


def _saving_again(out: Path) -> bool:
    """A save under way while an earlier one is on disk."""
    return (out / "last.pt.sha256").exists() and (out / "last.pt.partial").exists()


def _logged(metrics: Path) -> bool:
    return metrics.exists() and metrics.stat().st_size > 0


def flip(offset_fraction: float, size: int = 4096):
    def damage(out: Path):
        data = bytearray((out / "last.pt").read_bytes())
        start = int(len(data) * offset_fraction)
        data[start:start + size] = bytes(b ^ 0xFF for b in data[start:start + size])
        (out / "last.pt").write_bytes(bytes(data))
    return damage


def truncate(keep: float):
    def damage(out: Path):
        data = (out / "last.pt").read_bytes()
        (out / "last.pt").write_bytes(data[:int(len(data) * keep)])
    return damage


def append_to_metrics(text: str):
    def damage(out: Path):
        with open(out / "metrics.jsonl", "a") as f:
            f.write(text)
    return damage


def corrupt_metrics_line(out: Path):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20]
    (out / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def checkpoint_without_settings(out: Path):
    from vp_utils.training.checkpoint import save_checkpoint
    from vp_utils.training.recipes import get_recipe

    model = get_recipe("mae").build()
    save_checkpoint(out / "last.pt", model, torch.optim.AdamW(model.parameters()), step=3)


def fault_table(root: Path):
    f = Faults(root)
    missing_gpu = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"
    yield "rerun into a run without --resume", f.refused("overwrite", recipe=["mae", "--steps", "1"])
    yield "divergence (--lr 1e8), new run", f.diverged("diverge", "--lr", "1e8", "--save-every", 1, fresh=True)
    yield "divergence after a good checkpoint", f.diverged("diverge_resumed", "--resume", "--lr", "1e8",
                                                           "--allow-schedule-change", fresh=False)
    for flag, value in (("--seed", 1), ("--batch-size", 8), ("--lr", 0.01), ("--steps", 8), ("--warmup", 2),
                        ("--clip", 1.0), ("--image-size", 64)):
        yield f"resume with another {flag}", f.refused(f"resume{flag}", "--resume", flag, value)
    yield "resume with another recipe's last.pt", f.refused("other_recipe", "--resume",
                                                            recipe=["simclr", *RUN[1:]])
    yield "resume a checkpoint without settings", f.refused("no_settings", "--resume",
                                                            damage=checkpoint_without_settings)
    yield "--steps below the checkpoint's step", f.refused("below", "--resume", "--steps", 2,
                                                           "--allow-schedule-change")
    yield "resume with last.pt missing", f.refused("missing", "--resume", damage=lambda o: (o / "last.pt").unlink())
    yield "resume with last.pt.sha256 missing", f.refused("no_sha", "--resume",
                                                          damage=lambda o: (o / "last.pt.sha256").unlink())
    yield "4 KiB flipped inside last.pt", f.refused("flip", "--resume", damage=flip(0.5))
    yield "empty last.pt", f.refused("empty", "--resume", damage=truncate(0))
    yield "truncated last.pt (half)", f.refused("truncated", "--resume", damage=truncate(0.5))
    yield "torn last line in metrics.jsonl", f.survived("torn", "--resume",
                                                        damage=append_to_metrics('{"step": 4, "loss": 0.3'))
    yield "corrupt middle line in metrics.jsonl", f.refused("corrupt_metrics", "--resume",
                                                            damage=corrupt_metrics_line)
    yield "SIGKILL mid-write of last.pt", f.killed(
        "kill_saving", "while a later last.pt was written", lambda out: _saving_again(out),
        "--save-every", 1)
    yield "SIGKILL before the first checkpoint", f.killed(
        "kill_early", "after a logged step, before any save", lambda out: _logged(out / "metrics.jsonl"),
        "--save-every", 100)
    yield "kill between the two renames of a save", f.interrupted_rename("rename")
    yield "disk full writing last.pt", f.disk_full("full_checkpoint", "last.pt.partial")
    yield "disk full rewriting metrics.jsonl", f.disk_full("full_metrics", "metrics.jsonl.partial")
    yield "--resume into an empty folder", judge_survival(cli(*RUN, "--out", root / "fresh", "--resume"),
                                                          root / "fresh", f.straight)
    yield "--overwrite a run", f.survived("overwritten", "--overwrite")
    for argv in (["mae", "--device", missing_gpu], ["mae", "--device", "tpu"], ["mae", "--out", "FILE"],
                 ["mae", "--image-size", 30], ["simclr", "--batch-size", 1], ["dinov2", "--batch-size", 1],
                 ["mae", "--clip", 0], ["mae", "--warmup", -5], ["mae", "--lr", "nan"], ["mae", "--seed", -1],
                 ["mae", "--resume", "--overwrite"], ["mae", "--allow-schedule-change"]):
        name = " ".join(map(str, argv[1:])).replace("FILE", "naming a file")
        yield f"bad CLI value: {argv[0]} {name}", f.bad_argument(*argv[:1], "--steps", 3, "--batch-size", 4,
                                                                  "--out", "OUT", *argv[1:])


def main() -> None:
    began = time.perf_counter()
    counts = {}
    with tempfile.TemporaryDirectory() as root:
        print(f"{'fault':<44} {'outcome':<14} detail")
        for fault, (outcome, detail) in fault_table(Path(root)):
            counts[outcome] = counts.get(outcome, 0) + 1
            print(f"{fault:<44} {outcome:<14} {detail.replace(root + '/', '')}", flush=True)
    tally = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    print(f"\n{sum(counts.values())} faults in {time.perf_counter() - began:.0f} s: {tally}")
    sys.exit(1 if {"silent damage", "damage", "unclear error"} & counts.keys() else 0)


if __name__ == "__main__":
    main()
