"""Training our CLIP: the loss for fit at the learned temperature, and a tiny model that learns to pair."""
import math

import pytest
import torch

from vp_utils.data import batches
from vp_utils.models import tiny_clip
from vp_utils.objectives import clip_loss, clip_objective
from vp_utils.training import fit


def test_clip_objective_is_clip_loss_at_the_learned_temperature_and_trains_the_scale():
    torch.manual_seed(0)
    model = tiny_clip(vocab_size=20, context_length=6)
    images, ids = torch.rand(4, 3, 32, 32), torch.tensor([[18, 1, 2, 19, 0, 0], [18, 3, 19, 0, 0, 0],
                                                          [18, 4, 5, 6, 19, 0], [18, 7, 19, 0, 0, 0]])
    out = clip_objective(model, (images, ids))
    image_features, text_features, scale = model(images, ids)
    assert math.isclose(out["loss"].item(), clip_loss(image_features, text_features, 1 / scale).item(), rel_tol=1e-5)
    assert math.isclose(out["logit_scale"].item(), 1 / 0.07, rel_tol=1e-5)
    out["loss"].backward()
    assert model.logit_scale.grad is not None and model.logit_scale.grad.abs() > 0


@pytest.mark.parametrize("tower", ["resnet", "vit"])
def test_a_tiny_clip_learns_to_pair_images_with_their_captions(tower):
    torch.manual_seed(0)
    n, length = 8, 5
    images = torch.rand(n, 3, 32, 32)
    ids = torch.zeros(n, length, dtype=torch.long)
    ids[:, 0], ids[:, 1], ids[:, 2] = n + 1, torch.arange(1, n + 1), n + 2  # start, one word each, end
    model = tiny_clip(vocab_size=n + 3, context_length=length, tower=tower)
    before = clip_objective(model.eval(), (images, ids))["loss"].item()
    history = fit(model, batches(images, ids, batch_size=n), torch.optim.AdamW(model.parameters(), lr=3e-3),
                  steps=120, loss_fn=clip_objective, progress=False)
    model.eval()
    assert history.final("loss") < 0.3 * before
    assert torch.equal(model.similarity(images, ids).argmax(dim=1), torch.arange(n))


def test_unknown_tower_is_named():
    with pytest.raises(ValueError, match="tower"):
        tiny_clip(10, tower="mlp")
