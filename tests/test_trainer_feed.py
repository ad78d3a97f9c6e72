"""The trainer keeps the device fed: batches made ahead in worker processes are exactly the batches
the recipe makes for (seed, step), losses are read back in groups, and bf16 autocast is for CUDA."""
import json

import pytest
import torch
from torch import nn

from vp_utils.training import trainer
from vp_utils.training.recipes import RECIPES, Recipe
from vp_utils.training.trainer import LOG_EVERY, Process, RunFailed, default_workers, step_loader, main, parse_args, train

CPU = Process(0, 1, torch.device("cpu"))


def _args(recipe, *extra):
    return parse_args([recipe, "--steps", "6", "--batch-size", "8", "--out", "unused", *extra])


def _sequence(recipe, start, end, workers, proc=CPU):
    return list(step_loader(RECIPES[recipe], _args(recipe, "--workers", str(workers)), proc, start, end))


def _equal(first, second):
    return len(first) == len(second) and all(len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))
                                             for a, b in zip(first, second))


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_batches_from_worker_processes_are_the_recipes_batches_bit_for_bit(recipe):
    """Workers run one torch thread each; the main process here runs two, as a trainer's does."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        alone = _sequence(recipe, 0, 5, workers=0)
    finally:
        torch.set_num_threads(threads)
    world = RECIPES[recipe].make_world(0, 32)
    assert _equal(alone, [RECIPES[recipe].batch(world, 0, step, 8) for step in range(5)])
    assert _equal(_sequence(recipe, 0, 5, workers=2), alone)
    assert _equal(_sequence(recipe, 2, 5, workers=2), alone[2:])  # a resumed run carries on the same sequence
    assert not torch.equal(alone[0][0], alone[1][0])


def test_each_process_of_a_torchrun_gets_its_slice_of_the_global_batch():
    whole = _sequence("clip", 0, 2, workers=0)
    halves = [_sequence("clip", 0, 2, workers=2, proc=Process(rank, 2, torch.device("cpu"))) for rank in (0, 1)]
    for step in range(2):
        assert _equal([[torch.cat([halves[0][step][i], halves[1][step][i]]) for i in range(len(whole[step]))]],
                      [whole[step]])


def _losses(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_run_with_workers_and_a_resume_across_worker_counts_repeat_the_run_without(tmp_path):
    """SimCLR's augmentations draw from torch's global generator, seeded per step: the riskiest recipe
    to make in another process."""
    run = ["simclr", "--steps", "5", "--batch-size", "8", "--warmup", "1"]
    train(parse_args([*run, "--out", str(tmp_path / "alone"), "--workers", "0"]))
    train(parse_args([*run, "--out", str(tmp_path / "fed"), "--workers", "2"]))
    train(parse_args([*run, "--out", str(tmp_path / "resumed"), "--workers", "0", "--stop-after", "2"]))
    train(parse_args([*run, "--out", str(tmp_path / "resumed"), "--workers", "2", "--resume"]))
    assert _losses(tmp_path / "fed") == _losses(tmp_path / "resumed") == _losses(tmp_path / "alone")
    weights = [torch.load(tmp_path / name / "last.pt", weights_only=True)["model"] for name in ("alone", "fed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_losses_are_read_back_after_the_first_step_every_log_every_steps_and_at_the_end(tmp_path, monkeypatch):
    groups = []
    read_back = trainer._read_back
    monkeypatch.setattr(trainer, "_read_back", lambda pending, *rest: groups.append(len(pending))
                        or read_back(pending, *rest))
    steps = 2 * LOG_EVERY + 5
    last = train(parse_args(["mae", "--steps", str(steps), "--batch-size", "4", "--out", str(tmp_path)]))
    assert groups == [1, LOG_EVERY - 1, LOG_EVERY, 5]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(1, steps + 1)) and list(rows[0]) == ["step", "loss", "seconds",
                                                                                            "lr"]
    assert last["step"] == steps and last["loss"] == rows[-1]["loss"]
    assert 0 <= last["first_step_data_seconds"] <= last["data_seconds"] < last["seconds"]


def _nan_at_step_5(world, seed, step, size):
    return (torch.full((size, 1), float("nan") if step == 4 else 1.0),)


def test_a_non_finite_loss_inside_a_read_back_group_is_named_at_its_own_step(tmp_path, monkeypatch):
    recipe = Recipe(build=lambda: nn.Linear(1, 1), batch=_nan_at_step_5, loss=lambda net, shard: net(shard[0]).mean())
    monkeypatch.setitem(RECIPES, "nan_at_5", recipe)
    with pytest.raises(RunFailed, match=r"the loss is nan at step 5 \(lr .*keeps step 3"):
        train(parse_args(["nan_at_5", "--steps", "9", "--batch-size", "2", "--save-every", "3", "--out",
                          str(tmp_path)]))
    assert [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


@pytest.mark.parametrize("argv, flag", [(["--amp", "--device", "cpu"], "--amp"), (["--workers", "-1"], "--workers")])
def test_amp_off_cuda_and_negative_workers_get_one_error_line(tmp_path, capsys, argv, flag):
    with pytest.raises(SystemExit) as leave:
        main(["mae", "--steps", "2", "--out", str(tmp_path / "run"), *argv])
    assert leave.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err
    assert not (tmp_path / "run").exists()


def test_default_workers_none_on_a_cpu_two_to_four_beside_a_gpu(monkeypatch):
    assert default_workers(torch.device("cpu")) == 0
    for cores, expected in ((2, 2), (16, 4), (64, 4)):
        monkeypatch.setattr(trainer.os, "cpu_count", lambda: cores)
        assert default_workers(torch.device("cuda")) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 autocast is for a CUDA GPU")
def test_amp_trains_on_cuda_in_bf16_and_leaves_the_default_in_fp32(tmp_path):
    run = ["mae", "--steps", "3", "--batch-size", "8", "--device", "cuda"]
    train(parse_args([*run, "--out", str(tmp_path / "fp32")]))
    train(parse_args([*run, "--out", str(tmp_path / "bf16"), "--amp"]))
    fp32, bf16 = _losses(tmp_path / "fp32"), _losses(tmp_path / "bf16")
    assert all(abs(a - b) < 0.05 * a for a, b in zip(fp32, bf16)) and fp32 != bf16
