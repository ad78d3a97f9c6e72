"""The trainer guards every run: nothing overwritten, diverged or resumed wrongly without a one-line
error, checkpoints checked by their SHA-256 and written so that a kill or a full disk loses nothing.
tools/trainer_faults.py puts the command line through the same faults and more, with SIGKILLs."""
import errno
import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

from vp_utils.training import checkpoint as checkpoint_module
from vp_utils.training.checkpoint import checksum_path, load_checkpoint, load_shipped, read_checkpoint, save_checkpoint, sha256
from vp_utils.training.recipes import RECIPES, Recipe
from vp_utils.training.trainer import RunFailed, RunRefused, main, parse_args, train

RUN = ["--steps", "4", "--batch-size", "4", "--warmup", "1"]
ERROR = "python -m vp_utils.training.trainer: error: "


def _train(out, *extra, recipe="mae"):
    return train(parse_args([recipe, *RUN, "--out", str(out), *extra]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run stopped at step 2 of 4, and the same run never stopped."""
    root = tmp_path_factory.mktemp("runs")
    _train(root / "stopped", "--stop-after", "2")
    _train(root / "straight")
    return root


@pytest.fixture
def stopped(runs, tmp_path):
    """A copy of the stopped run, this test's to damage."""
    return shutil.copytree(runs / "stopped", tmp_path / "run")


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def _losses(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_a_run_is_replaced_only_with_overwrite(stopped):
    before = _files(stopped)
    with pytest.raises(RunRefused, match="already holds a run.*--resume.*--overwrite"):
        train(parse_args(["mae", "--steps", "1", "--batch-size", "4", "--out", str(stopped)]))
    assert _files(stopped) == before
    train(parse_args(["mae", "--steps", "1", "--batch-size", "4", "--out", str(stopped), "--overwrite"]))
    assert len(_losses(stopped)) == 1 and read_checkpoint(stopped / "last.pt")["step"] == 1


def test_a_diverging_run_stops_with_its_last_finite_checkpoint_kept(stopped, capsys):
    kept = (stopped / "last.pt").read_bytes()
    with pytest.raises(SystemExit) as leave:
        main(["mae", *RUN, "--out", str(stopped), "--resume", "--lr", "1e8", "--allow-schedule-change"])
    assert leave.value.code == 1
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith(ERROR) and "loss is nan at step 4" in error and "keeps step 2" in error
    assert (stopped / "last.pt").read_bytes() == kept
    assert read_checkpoint(stopped / "last.pt")["step"] == 2


def _poisoned_batch(world, seed, step, size):
    return (torch.ones(size, 1),)


def _poison(net, step, total):
    """The weight turns infinite before the last step; the clamped loss stays finite."""
    if step == total - 1:
        with torch.no_grad():
            net.weight.fill_(float("inf"))


def test_non_finite_weights_are_never_saved_even_when_the_loss_is_finite(tmp_path, monkeypatch):
    recipe = Recipe(build=lambda: nn.Linear(1, 1), batch=_poisoned_batch, before_step=_poison,
                    loss=lambda net, shard: net(shard[0]).clamp(-1, 1).mean() + 2)
    monkeypatch.setitem(RECIPES, "poisoned", recipe)
    with pytest.raises(RunFailed, match="weights are not finite after step 3.*keeps step 2"):
        _train(tmp_path, "--save-every", "2", "--steps", "3", recipe="poisoned")
    assert read_checkpoint(tmp_path / "last.pt")["model"]["weight"].isfinite().all()


@pytest.mark.parametrize("flag, value", [("--seed", "1"), ("--batch-size", "8"), ("--image-size", "64"),
                                         ("--lr", "0.01"), ("--steps", "6"), ("--warmup", "2"), ("--clip", "1")])
def test_a_resume_that_differs_from_the_checkpoint_is_refused_naming_the_field(stopped, flag, value):
    before = _files(stopped)
    with pytest.raises(RunRefused, match=f"{flag} .* differs from the checkpoint's {flag}") as error:
        _train(stopped, "--resume", flag, value)
    _one_line(error)
    assert _files(stopped) == before


def test_allow_schedule_change_lets_steps_and_lr_change_but_not_the_data(stopped):
    with pytest.raises(RunRefused, match="--seed"):
        _train(stopped, "--resume", "--allow-schedule-change", "--seed", "1")
    assert _train(stopped, "--resume", "--allow-schedule-change", "--steps", "5", "--lr", "0.001")["step"] == 5
    meta = read_checkpoint(stopped / "last.pt")["meta"]
    assert (meta["steps"], meta["lr"]) == (5, 0.001)


def test_another_recipes_checkpoint_is_refused_in_one_line(stopped):
    with pytest.raises(RunRefused, match="recipe simclr differs from the checkpoint's recipe mae") as error:
        _train(stopped, "--resume", recipe="simclr")
    _one_line(error)
    simclr = RECIPES["simclr"].build()
    with pytest.raises(ValueError, match="does not fit this Embedder: .* tensors missing") as error:
        load_checkpoint(stopped / "last.pt", simclr)
    _one_line(error)


def test_steps_below_or_at_the_checkpoints_step(stopped):
    with pytest.raises(RunRefused, match="--steps 1 is below the step the checkpoint reached"):
        _train(stopped, "--resume", "--steps", "1", "--allow-schedule-change")
    before = _files(stopped)
    assert _train(stopped, "--resume", "--steps", "2", "--allow-schedule-change") == {}  # nothing left to train
    assert _files(stopped) == before


def test_resume_without_a_checkpoint(stopped, tmp_path, capsys):
    (stopped / "last.pt").unlink()
    before = _files(stopped)
    with pytest.raises(RunRefused, match="last.pt is missing.*--overwrite"):
        _train(stopped, "--resume")
    assert _files(stopped) == before
    assert _train(tmp_path / "new", "--resume")["step"] == 4  # an empty folder: a new run
    assert "no checkpoint in" in capsys.readouterr().err


def test_a_torn_last_metrics_line_is_dropped_and_the_resume_is_exact(stopped, runs, capsys):
    with open(stopped / "metrics.jsonl", "a") as log:
        log.write('{"step": 3, "lo')
    _train(stopped, "--resume")
    assert "dropped its torn last line" in capsys.readouterr().err
    assert _losses(stopped) == _losses(runs / "straight")


def test_a_damaged_metrics_line_before_the_last_is_refused(stopped):
    lines = (stopped / "metrics.jsonl").read_text().splitlines()
    (stopped / "metrics.jsonl").write_text(lines[0][:10] + "\n" + lines[1] + "\n")
    with pytest.raises(RunRefused, match="line 1 is not a step's JSON object"):
        _train(stopped, "--resume")


def _small_checkpoint(path, step=1):
    model = nn.Linear(64, 64)
    return save_checkpoint(path, model, torch.optim.AdamW(model.parameters()), step=step, recipe="x")


def test_a_checkpoint_records_its_sha256_as_sha256sum_does(tmp_path):
    path = _small_checkpoint(tmp_path / "c.pt")
    assert checksum_path(path).read_text() == f"{sha256(path)}  c.pt\n"
    assert read_checkpoint(path)["step"] == 1


@pytest.mark.parametrize("damage", [
    lambda data: data[:4096] + bytes(b ^ 0xFF for b in data[4096:8192]) + data[8192:],  # torch reads this silently
    lambda data: b"",
    lambda data: data[:len(data) // 2],
], ids=["4 KiB flipped", "empty", "truncated"])
def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, damage):
    path = _small_checkpoint(tmp_path / "c.pt")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match="does not match the SHA-256 recorded in c.pt.sha256") as error:
        read_checkpoint(path)
    _one_line(error)


def test_a_checkpoint_without_its_record_is_refused_with_the_command_to_make_one(tmp_path):
    path = _small_checkpoint(tmp_path / "c.pt")
    checksum_path(path).unlink()
    with pytest.raises(ValueError, match="sha256sum c.pt > c.pt.sha256"):
        read_checkpoint(path)


def test_bytes_that_match_their_record_but_hold_no_checkpoint_are_refused_in_one_line(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"not a checkpoint")
    checksum_path(path).write_text(f"{sha256(path)}  c.pt\n")
    with pytest.raises(ValueError, match="c.pt is not a readable checkpoint") as error:
        read_checkpoint(path)
    _one_line(error)


def test_a_save_killed_between_its_two_renames_is_finished_on_load(tmp_path):
    path = _small_checkpoint(tmp_path / "c.pt", step=1)
    old_record = checksum_path(path).read_bytes()
    _small_checkpoint(path, step=2)
    checksum_path(path).rename(tmp_path / "c.pt.sha256.partial")  # the new record, staged
    checksum_path(path).write_bytes(old_record)  # the old one, not yet replaced
    assert read_checkpoint(path)["step"] == 2
    assert checksum_path(path).read_text().split()[0] == sha256(path)
    assert not list(tmp_path.glob("*.partial"))


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = _small_checkpoint(tmp_path / "c.pt", step=1)
    before = _files(tmp_path)

    def full_disk(descriptor):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint_module.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        _small_checkpoint(path, step=2)
    monkeypatch.undo()
    assert _files(tmp_path) == before and read_checkpoint(path)["step"] == 1


BAD_COMMAND_LINES = [  # (argv, the flag its error line must name)
    (["mae", "--device", "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"],
     "--device"),
    (["mae", "--image-size", "30"], "--image-size 30"),
    (["simclr", "--batch-size", "1"], "--batch-size 1"),
    (["mae", "--clip", "0"], "--clip"),
    (["mae", "--warmup", "-5"], "--warmup"),
    (["mae", "--lr", "nan"], "--lr"),
    (["mae", "--seed", "-1"], "--seed"),
    (["mae", "--allow-schedule-change"], "--allow-schedule-change"),
]


@pytest.mark.parametrize("argv, flag", BAD_COMMAND_LINES, ids=[" ".join(argv) for argv, _ in BAD_COMMAND_LINES])
def test_bad_command_lines_get_one_error_line_and_status_2(tmp_path, capsys, argv, flag):
    with pytest.raises(SystemExit) as leave:
        main([*argv[:1], "--steps", "2", "--batch-size", "4", "--out", str(tmp_path / "run"), *argv[1:]])
    assert leave.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(ERROR) and flag in err[0], err
    assert not (tmp_path / "run").exists()


def test_an_out_that_names_a_file_is_refused_without_a_traceback(tmp_path):
    (tmp_path / "f").write_text("")
    done = subprocess.run([sys.executable, "-m", "vp_utils.training.trainer", "mae", "--out", str(tmp_path / "f")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"{ERROR}--out {tmp_path / 'f'} is a file; expected a folder, new or holding "
                                        f"a run (see --help)"]


def test_load_shipped_refuses_a_record_without_sha256_and_names_that_reach_outside(tmp_path):
    model = nn.Linear(2, 2)
    torch.save({"model": model.state_dict(), "step": 1, "meta": {}}, tmp_path / "tiny.pt")
    (tmp_path / "tiny.json").write_text(json.dumps({"recipe": "mae"}))
    with pytest.raises(ValueError, match="tiny.json records no sha256") as error:
        load_shipped("tiny", model, shipped=tmp_path)
    _one_line(error)
    (tmp_path / "tiny.json").write_text(json.dumps({"sha256": hashlib.sha256((tmp_path / "tiny.pt").read_bytes())
                                                    .hexdigest()}))
    load_shipped("tiny", model, shipped=tmp_path)
    for name in ("../tiny", "sub/tiny", "tiny.pt", ""):
        with pytest.raises(ValueError, match="plain identifier"):
            load_shipped(name, model, shipped=tmp_path)
    (tmp_path / "tiny.json").write_text("{")
    with pytest.raises(ValueError, match="tiny.json is not a JSON record"):
        load_shipped("tiny", model, shipped=tmp_path)
    with pytest.raises(TypeError, match="name must be a str"):
        load_shipped(3, model, shipped=tmp_path)
