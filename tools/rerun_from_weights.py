"""A rerun target for a shipped checkpoint whose training log was not kept (clip, simclr, fusion).

Exports record what a rerun should reach: the mean training loss over the run's last 10% of steps,
within twice its spread (`vp_utils.training.checkpoint.rerun_target`). Without the log, this measures
the same steps' losses with the shipped weights: the run's own batches for those steps (each a pure
function of seed and step), in training mode with batch-norm statistics frozen. At the end of a
cosine schedule the weights barely move over the last 10%, so the two agree closely; the last
batch's loss is printed beside the record's `final_loss` as the check.

    python tools/rerun_from_weights.py clip simclr fusion            # print
    python tools/rerun_from_weights.py clip --write                   # and store it in data/checkpoints/clip.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from vp_utils.training import as_metrics, get_recipe, shipped_model
from vp_utils.training.checkpoint import SHIPPED, record_flag, rerun_target

SOURCE = "the shipped weights' losses on the run's own last batches (tools/rerun_from_weights.py): its log was not kept"


def losses_at_the_end(name: str, share: float = 0.1, shipped: Path = SHIPPED) -> tuple[list[float], dict]:
    """The shipped model's loss on each of its run's last `share` of batches, and its record."""
    model, record = shipped_model(name, shipped)
    recipe = get_recipe(record["recipe"])
    flag = {key: record_flag(record, key) for key in ("batch-size", "seed")}
    steps = record["step"]
    last = max(2, int(steps * share))
    model.train()
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = 0.0  # batch statistics as in training, the shipped running ones untouched
    losses = []
    with torch.no_grad():
        for _, batch in zip(range(last), recipe.batches(flag["seed"], flag["batch-size"], start=steps - last)):
            out = recipe.loss(model, batch)
            losses.append(float(as_metrics(out)["loss"]))
    return losses, record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help="shipped checkpoints, e.g. clip simclr fusion")
    parser.add_argument("--write", action="store_true", help="store the target in each record")
    args = parser.parse_args(argv)
    for name in args.names:
        start = time.perf_counter()
        losses, record = losses_at_the_end(name)
        target = rerun_target([{"loss": loss} for loss in losses], share=1.0)
        print(f"{name}: last {len(losses)} batches in {time.perf_counter() - start:.0f} s; the last batch's loss "
              f"{losses[-1]:.4f} against the record's final_loss {record['final_loss']}; target {target}")
        if args.write:
            path = SHIPPED / f"{name}.json"
            stored = {k: v for k, v in json.loads(path.read_text()).items() if k != "sha256"}
            stored |= {"rerun": target, "rerun_source": SOURCE, "sha256": record["sha256"]}  # the hash stays last
            path.write_text(json.dumps(stored, indent=1) + "\n")


if __name__ == "__main__":
    main()
