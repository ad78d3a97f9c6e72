"""The command-line trainer: exact resume, safe checkpoints, and torchrun parity on CPU (gloo)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vp_utils.data import scene_indices
from vp_utils.training import get_recipe, run, run_model, shipped_model
from vp_utils.training.checkpoint import (SHIPPED, check_rerun, export, load_checkpoint, load_shipped, record_flag,
                                         save_checkpoint, sha256)
from vp_utils.training.trainer import Process, build, parse_args, train

SMALL = ["--steps", "6", "--batch-size", "8", "--warmup", "2"]


def _run(out, *extra, recipe="mae"):
    return train(parse_args([recipe, *SMALL, "--out", str(out), *extra]))


def _torchrun(out, recipe="mae"):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "vp_utils.training.trainer", recipe, *SMALL, "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=180)


def _losses(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def _weights(out):
    return torch.load(out / "last.pt", weights_only=True)["model"]


@pytest.mark.parametrize("recipe", ["mae", "vit", "simclr", "clip", "clip_vit", "dino", "dinov2", "fusion"])
def test_a_resumed_run_repeats_the_uninterrupted_one_exactly(tmp_path, recipe):
    _run(tmp_path / "straight", recipe=recipe)
    _run(tmp_path / "resumed", "--stop-after", "3", recipe=recipe)  # as if the job were stopped at step 3
    _run(tmp_path / "resumed", "--resume", recipe=recipe)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    straight, resumed = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    # it does learn: some later step beats the first (DINO's loss is not monotone over its first steps:
    # the teacher sharpens as the student moves, and colour-jittered crops of 8 scenes are a noisy batch)
    losses = _losses(tmp_path / "straight")
    assert min(losses[1:]) < losses[0], losses


def test_torchrun_on_two_processes_equals_one_process_on_the_global_batch(tmp_path):
    """MAE has no batch norm, so two processes must compute exactly what one does (up to rounding)."""
    _run(tmp_path / "one")
    done = _torchrun(tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(one) == len(two) == 6
    assert torch.allclose(torch.tensor(one), torch.tensor(two), rtol=1e-5, atol=0)
    # Adam divides by each gradient's running size, so rounding noise in gradients that are zero
    # in exact arithmetic (an attention key bias: softmax ignores a shift shared by all scores)
    # becomes small steps. Compare the weights as a whole against how far training moved them.
    start = build(get_recipe("mae"), parse_args(["mae", *SMALL, "--out", "x"]), Process(0, 1, torch.device("cpu")))[0]
    start = start.state_dict()
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    difference = torch.cat([(a[k] - b[k]).flatten() for k in a]).norm()
    moved = torch.cat([(a[k] - start[k]).flatten() for k in a]).norm()
    assert difference < 1e-3 * moved


def test_simclr_trains_under_torchrun_with_negatives_gathered_across_processes(tmp_path):
    """Each process normalises by its own shard on CPU (no CPU SyncBatchNorm), so only the run itself
    is checked: DDP with one forward per step and the gathered NT-Xent loss."""
    done = _torchrun(tmp_path / "two", "simclr")
    assert done.returncode == 0, done.stderr[-3000:]
    losses = _losses(tmp_path / "two")
    assert len(losses) == 6 and all(0 < loss < 10 for loss in losses)


@pytest.mark.parametrize("recipe", ["dinov2", "fusion"])
def test_objectives_that_call_parts_of_the_model_average_their_gradients_under_torchrun(tmp_path, recipe):
    """DINOv2's and early fusion's objectives call parts of the model (encoder, heads, token pass), not
    its forward; the trainer runs each objective inside DistributedDataParallel's forward, so the
    processes' weights stay equal. The trainer compares them at every save and stops the run when
    they differ."""
    done = _torchrun(tmp_path / "two", recipe)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(_losses(tmp_path / "two")) == 6


def test_checkpoints_load_without_pickled_code_and_restore_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    path = save_checkpoint(tmp_path / "c.pt", model, optimizer, step=7, recipe="x")
    assert not list(tmp_path.glob("*.partial"))
    fresh = torch.nn.Linear(3, 2)
    fresh_opt = torch.optim.AdamW(fresh.parameters())
    info = load_checkpoint(path, fresh, fresh_opt)
    assert info == {"step": 7, "meta": {"recipe": "x"}}
    assert torch.equal(fresh.weight, model.weight)
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(ValueError, match="no optimizer state"):
        load_checkpoint(save_checkpoint(tmp_path / "m.pt", model), fresh, fresh_opt)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt", fresh)


def test_sha256_of_a_known_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_batches_are_a_function_of_seed_and_step():
    recipe = get_recipe("mae")
    world = recipe.make_world(seed=0)
    first, again, other = (recipe.batch(world, 0, s, 4) for s in (5, 5, 6))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[1], other[1])
    assert list(scene_indices(2, 4, 10)) == [8, 9, 0, 1]


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        parse_args(["mae", "--out", "x", "--steps", "0"])
    with pytest.raises(SystemExit):
        parse_args(["no_such_recipe", "--out", "x"])


def test_export_and_load_shipped_check_the_hash(tmp_path):
    _run(tmp_path / "run", "--stop-after", "2")
    path = export(tmp_path / "run", "tiny", shipped=tmp_path / "shipped")
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["recipe"] == "mae" and record["step"] == 2 and "--steps 6" in record["command"]
    assert "--clip 3.0" in record["command"]  # every schedule setting, so the command reruns the run
    assert record["device"] == "cpu" and record["threads"] == torch.get_num_threads() and record["parent"] is None
    assert record["commit"] is None or len(record["commit"]) >= 12  # None outside a git checkout
    model = get_recipe("mae").build()
    assert load_shipped("tiny", model, shipped=tmp_path / "shipped")["sha256"] == sha256(path)
    assert all(torch.equal(v, _weights(tmp_path / "run")[k]) for k, v in model.state_dict().items())
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    with pytest.raises(ValueError, match="SHA-256"):
        load_shipped("tiny", model, shipped=tmp_path / "shipped")


def test_a_rerun_is_held_to_the_loss_its_record_says_it_should_reach(tmp_path):
    _run(tmp_path / "run", "--stop-after", "4")
    export(tmp_path / "run", "tiny", shipped=tmp_path / "shipped")
    target = json.loads((tmp_path / "shipped" / "tiny.json").read_text())["rerun"]
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert target["last_steps"] == 2 and target["mean_loss"] == round(sum(losses[-2:]) / 2, 4)
    assert "tiny: mean loss over the last 2 steps" in check_rerun(tmp_path / "run", "tiny", tmp_path / "shipped")
    off = [dict(json.loads(line), loss=json.loads(line)["loss"] + target["within"] + 0.01)
           for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in off))
    with pytest.raises(ValueError, match="outside the band"):
        check_rerun(tmp_path / "run", "tiny", tmp_path / "shipped")
    with pytest.raises(FileNotFoundError, match="not a trainer run folder"):
        check_rerun(tmp_path, "tiny", tmp_path / "shipped")


def test_a_learners_own_run_loads_through_run_model(tmp_path):
    _run(tmp_path / "run", "--stop-after", "2")
    model, meta = run_model(tmp_path / "run")
    assert meta["recipe"] == "mae" and not model.training
    assert all(torch.equal(v, _weights(tmp_path / "run")[k]) for k, v in model.state_dict().items())
    (tmp_path / "run" / "last.pt").write_bytes((tmp_path / "run" / "last.pt").read_bytes()[:-1] + b"x")
    with pytest.raises(ValueError, match="SHA-256"):
        run_model(tmp_path / "run" / "last.pt")


def test_the_fusion_record_names_the_checkpoint_its_model_is_built_on():
    assert json.loads((SHIPPED / "fusion.json").read_text())["parent"] == get_recipe("fusion").parent == "clip"


@pytest.mark.parametrize("record", sorted(SHIPPED.glob("*.json")), ids=lambda p: p.stem)
def test_every_shipped_checkpoint_matches_its_hash_and_its_recipe(record):
    recipe = json.loads(record.read_text())["recipe"]
    load_shipped(record.stem, get_recipe(recipe).build())  # raises on a changed file or a changed architecture
    model, loaded = shipped_model(record.stem)  # what the notebooks call: the record's recipe, in eval mode
    assert loaded["recipe"] == recipe and not model.training


def test_the_command_line_takes_its_thread_count_from_vp_threads(tmp_path):
    """Two jobs at torch's default thread count each on a 2-core laptop run several times slower."""
    probe = ("import torch, vp_utils.training.trainer as t; t.train = lambda args: {}; t.main(['mae', '--out', 'x']); "
             "print(torch.get_num_threads())")
    env = {**os.environ, "VP_THREADS": "1", "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "1"


@pytest.mark.parametrize("recipe", ["vit", "dinov2"])
def test_run_in_a_notebook_is_the_trainer_step_for_step(tmp_path, recipe):
    """One loop: `run` repeats the command-line trainer's losses bit for bit (a classifier, and the
    recipe with a before-step hook, an EMA teacher)."""
    _run(tmp_path, recipe=recipe)
    _, history = run(recipe, 6, batch_size=8, warmup=2, progress=False)
    assert history["loss"] == _losses(tmp_path)


def test_the_data_size_recipes_differ_only_in_how_many_scenes_they_cycle_through():
    small, large = get_recipe("resnet14_500"), get_recipe("resnet14_20000")
    assert (len(small.make_world(0)), len(large.make_world(0))) == (500, 20_000)
    first = small.batch(small.make_world(0), 0, 0, 8)
    assert all(torch.equal(a, b) for a, b in zip(first, large.batch(large.make_world(0), 0, 0, 8)))  # nested sets
    optimizer = small.optimizer(small.initial_model(0))
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["nesterov"]  # ResNets train with SGD
    assert isinstance(get_recipe("vit_500").optimizer(get_recipe("vit_500").initial_model(0)), torch.optim.AdamW)


def test_a_rerun_target_leaves_room_for_the_last_digit_when_the_loss_reached_zero():
    from vp_utils.training.checkpoint import rerun_target
    target = rerun_target([{"loss": 0.0}] * 50)
    assert target == {"last_steps": 5, "mean_loss": 0.0, "within": 1e-4}


def test_a_records_flags_are_read_from_its_command():
    record = {"recipe": "vit", "command": "python -m vp_utils.training.trainer vit --steps 10000 --batch-size 64 "
                                          "--lr 0.001 --seed 3 --out RUN"}
    assert (record_flag(record, "batch-size"), record_flag(record, "seed"), record_flag(record, "steps")) == (64, 3, 10000)
    with pytest.raises(KeyError, match="no integer --lr"):
        record_flag(record, "lr")
    with pytest.raises(KeyError, match="no integer --warmup"):
        record_flag(record, "warmup")


def test_a_rerun_target_read_from_the_weights_matches_the_one_the_log_gives(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from rerun_from_weights import losses_at_the_end

    train(parse_args(["mae", "--steps", "20", "--batch-size", "8", "--warmup", "2", "--out", str(tmp_path / "run")]))
    export(tmp_path / "run", "tiny", shipped=tmp_path / "shipped")
    logged = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses, record = losses_at_the_end("tiny", shipped=tmp_path / "shipped")
    assert len(losses) == 2 and record["rerun"]["last_steps"] == 2  # the same last 10% of the run's batches
    assert losses == pytest.approx(logged[-2:], rel=0.02)  # the weights barely move at the schedule's end
    assert losses != pytest.approx(logged[:2], rel=0.02)  # and the batches are the run's last ones, not its first
