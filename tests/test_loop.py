import pytest
import torch

from vp_utils.models import resnet
from vp_utils.data import batches
from vp_utils.training.loop import as_metrics, fit, fit_together


def _runs(seed=0):
    """Two small nets on the same toy data, each with its own optimiser and batch stream."""
    images = torch.rand(64, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(64) % 4
    runs = {}
    for name in ["plain8", "resnet8"]:
        torch.manual_seed(seed)
        model = resnet(name, num_classes=4, width=4, zero_init_last=False)
        runs[name] = (model, batches(images, labels, batch_size=16, seed=seed),
                      torch.optim.AdamW(model.parameters(), lr=1e-2))
    return runs


@pytest.mark.parametrize("workers", [1, 2])
def test_fit_together_matches_each_run_alone_bit_for_bit(workers):
    together = fit_together(_runs(), 6, workers=workers, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = {name: fit(*run, 6, progress=False) for name, run in _runs().items()}
    finally:
        torch.set_num_threads(threads)
    assert list(together) == ["plain8", "resnet8"]
    for name in alone:
        assert together[name]["loss"] == alone[name]["loss"]


def test_fit_together_takes_each_runs_own_options():
    def doubled(model, batch):
        images, labels = batch
        return 2 * torch.nn.functional.cross_entropy(model(images), labels)

    runs = _runs()
    runs["plain8"] = (*runs["plain8"], {"loss_fn": doubled})
    together = fit_together(runs, 3, workers=2, progress=False)
    alone = _runs()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain = fit(*alone["plain8"], 3, loss_fn=doubled, progress=False)
        residual = fit(*alone["resnet8"], 3, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert together["plain8"]["loss"] == plain["loss"] and together["resnet8"]["loss"] == residual["loss"]
    with pytest.raises(ValueError, match="options dict"):
        fit_together({"bad": (*_runs()["plain8"], "loss")}, 1, progress=False)


def test_fit_together_restores_the_thread_count_and_names_bad_workers():
    threads = torch.get_num_threads()
    fit_together(_runs(), 1, workers=2, progress=False)
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="workers"):
        fit_together(_runs(), 1, workers=-1, progress=False)


def test_decay_groups_spare_biases_norms_and_the_named_tables():
    from vp_utils.models import vit
    from vp_utils.training.loop import decay_groups

    model = vit("vit_micro", num_classes=5, embed_dim=32)
    decayed, kept = decay_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    kept_names = {names[id(p)] for p in kept["params"]}
    assert {"pos_embed", "cls_token", "patch_embed.proj.bias", "norm.weight"} <= kept_names
    assert all(p.ndim >= 2 for p in decayed["params"]) and "patch_embed.proj.weight" not in kept_names
    assert decayed["weight_decay"] == 0.05 and kept["weight_decay"] == 0.0
    assert len(decayed["params"]) + len(kept["params"]) == len(list(model.parameters()))


def test_as_metrics_wraps_a_bare_loss_and_keeps_a_dict():
    loss = torch.tensor(1.5)
    assert as_metrics(loss) == {"loss": loss}
    terms = {"loss": loss, "iBOT": torch.tensor(0.5)}
    assert as_metrics(terms) is terms
