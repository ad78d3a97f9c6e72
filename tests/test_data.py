import numpy as np
import pytest
import torch

from vp_utils.data import (CAPTION_TEMPLATES, COLOURS, RELATIONS, SHAPES, ShapesWorld, caption, digits, photo_batch,
                           photos, questions, relation, words)
from vp_utils.data.shapes import floor_depth, horizon


@pytest.fixture(scope="module")
def scenes():
    return ShapesWorld(32, seed=3).render(range(300))


def test_same_seed_and_index_give_the_same_scene_in_any_order():
    world = ShapesWorld(32, seed=7)
    forward, backward = world.render(range(50)), world.render(range(49, -1, -1))
    assert np.array_equal(forward.images, backward.images[::-1])
    assert np.array_equal(world.render([17]).images[0], forward.images[17])
    assert not np.array_equal(ShapesWorld(32, seed=8).render(range(50)).images, forward.images)


def test_shapes_colours_and_counts_are_all_used(scenes):
    assert set(scenes.shape[scenes.shape >= 0]) == set(range(len(SHAPES)))
    assert set(scenes.colour[scenes.colour >= 0]) == set(range(len(COLOURS)))
    assert set(scenes.n_objects) == {1, 2, 3}
    assert len(SHAPES) >= 5 and len(COLOURS) >= 6


def test_instance_masks_agree_with_pixels(scenes):
    palette = np.array(list(COLOURS.values()), np.float32)
    for i in range(len(scenes)):
        for slot in range(scenes.n_objects[i]):
            pixels = scenes.images[i][scenes.instance[i] == slot + 1]
            assert len(pixels) > 0
            assert np.allclose(pixels, palette[scenes.colour[i, slot]])
            shape_ids = scenes.classes[i][scenes.instance[i] == slot + 1]
            assert np.all(shape_ids == scenes.shape[i, slot] + 1)
        background = scenes.images[i][scenes.instance[i] == 0]
        assert np.allclose(background[:, 0], background[:, 1])  # grey: colour lives on objects only


def test_depth_agrees_with_occlusion(scenes):
    for i in range(len(scenes)):
        for slot in range(scenes.n_objects[i]):
            visible = scenes.instance[i] == slot + 1
            assert np.allclose(scenes.depth[i][visible], scenes.object_depth[i, slot])
            # an object is nearer than the ground behind every pixel it covers
            assert np.all(scenes.depth[i][visible] < 1.0 - 0.5 * (np.nonzero(visible)[0] + 0.5) / 32 + 1e-6)
    occluded = scenes.visible < 0.999
    assert occluded.any(), "some objects should be partly hidden"
    for i, slot in np.argwhere(occluded):  # whoever is hidden has a nearer object in front
        assert np.nanmin(scenes.object_depth[i]) < scenes.object_depth[i, slot]
    nearest = np.nanargmin(scenes.object_depth, axis=1)
    assert np.all(scenes.visible[np.arange(len(scenes)), nearest] == 1.0)


def test_the_floor_gives_depth_that_the_row_does_not():
    floor = ShapesWorld(32, background="floor", seed=3).render(range(300))
    ground = floor.instance == 0
    # the same row lies at different depths in different scenes: the camera's pitch changes
    row = np.where(ground[:, 24], floor.depth[:, 24], np.nan)
    assert np.nanstd(np.nanmean(row, axis=1)) > 0.05
    # within a scene the floor recedes upwards, under a sky at depth 1
    clear = ground[:, :, 0].all(axis=1)
    assert np.all(np.diff(floor.depth[clear, :, 0], axis=1) <= 1e-6)
    assert floor.depth.max() <= 1.0 and (floor.depth == 1.0).any()
    floor_behind = floor_depth((np.arange(32) + 0.5) / 32, horizon(3, floor.index)[:, None])  # (scenes, rows)
    for i in range(len(floor)):  # an object is nearer than the floor behind it, and the floor is grey
        for slot in range(floor.n_objects[i]):
            rows = np.nonzero(floor.instance[i] == slot + 1)[0]
            assert np.all(floor.object_depth[i, slot] < floor_behind[i, rows])
        assert np.allclose(floor.images[i][ground[i]][:, 0], floor.images[i][ground[i]][:, 2])


def test_captions_and_answers_follow_the_labels(scenes):
    for i in range(50):
        objects = scenes.objects(i)
        for template in ("list", "count", "there is"):
            text = caption(scenes, i, template)
            assert any(f"{o['colour']} {o['shape']}" in text for o in objects)
        if len(objects) > 1:
            a, b = objects[:2]
            assert caption(scenes, i, "relation") == f"a {a['colour']} {a['shape']} {relation(a, b)} a {b['colour']} {b['shape']}"
        answers = {q.kind: q for q in questions(scenes, i)}
        assert answers["count"].answer == ["one", "two", "three"][len(objects) - 1]
        shape_q = answers["shape"]
        colour = shape_q.text.split("the ")[1].split(" object")[0]
        assert shape_q.answer == next(o["shape"] for o in objects if o["colour"] == colour)
        exists = answers["existence"]
        pair = tuple(exists.text.removeprefix("is there a ").removesuffix("?").split())
        assert (exists.answer == "yes") == (pair in {(o["colour"], o["shape"]) for o in objects})
        if len(objects) > 1:  # "is the A left of, right of, above, below the B?" answered with A's place
            text = answers["relation"].text
            first, second = sorted(objects[:2], key=lambda o: text.index(f"{o['colour']} {o['shape']}"))
            assert text == f"is the {first['colour']} {first['shape']} left of, right of, above, below the " \
                           f"{second['colour']} {second['shape']}?"
            assert answers["relation"].answer == relation(first, second)
        side = answers["side"]
        named = next(o for o in objects if side.text == f"is the {o['colour']} {o['shape']} left?")
        assert (side.answer == "yes") == (named["x"] < 0.5)


def test_relation_reads_image_coordinates():
    a, b = dict(x=0.2, y=0.5), dict(x=0.8, y=0.5)
    assert relation(a, b) == "left of" and relation(b, a) == "right of"
    assert relation(dict(x=0.5, y=0.1), dict(x=0.5, y=0.9)) == "above"


def test_answers_are_balanced(scenes):
    asked = [q for i in range(len(scenes)) for q in questions(scenes, i)]
    for kind in ("existence", "side"):
        assert 0.35 < np.mean([q.answer == "yes" for q in asked if q.kind == kind]) < 0.65
    places = [q.answer for q in asked if q.kind == "relation"]
    assert {place: places.count(place) / len(places) > 0.15 for place in RELATIONS} == dict.fromkeys(RELATIONS, True)


def test_held_out_pairs_never_appear_in_train_and_always_in_held_out():
    held = (("red", "circle"), ("blue", "square"))
    ids = {(list(COLOURS).index(c), SHAPES.index(s)) for c, s in held}
    train = ShapesWorld(32, held_out=held).render(range(1000))
    pairs = {(c, s) for c, s in zip(train.colour.ravel(), train.shape.ravel()) if s >= 0}
    assert not pairs & ids and len(pairs) == len(COLOURS) * len(SHAPES) - 2
    test = ShapesWorld(32, held_out=held, split="held_out").render(range(200))
    assert {(c, s) for c, s in zip(test.colour[:, 0], test.shape[:, 0])} == ids


def test_any_image_size_and_a_torch_dataset():
    world = ShapesWorld(64, objects=(1, 1), target="combo", length=10)
    image, label = world[3]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0 <= label < len(COLOURS) * len(SHAPES)
    loader = torch.utils.data.DataLoader(world, batch_size=5)
    assert next(iter(loader))[0].shape == (5, 3, 64, 64)
    x, y = world.tensors()
    assert torch.equal(x[3], image) and y[3] == label


@pytest.mark.parametrize("kwargs, error", [
    (dict(image_size=8), ValueError), (dict(objects=(0, 2)), ValueError), (dict(objects=(2, 4)), ValueError),
    (dict(background="stripes"), ValueError), (dict(target="texture"), ValueError),
    (dict(held_out=(("pink", "circle"),)), ValueError), (dict(split="held_out"), ValueError),
])
def test_bad_world_settings_are_named(kwargs, error):
    with pytest.raises(error):
        ShapesWorld(**kwargs)


def test_bad_indices_are_named():
    world = ShapesWorld(32, length=5)
    with pytest.raises(IndexError):
        world[5]
    with pytest.raises(ValueError, match="empty"):
        world.render([])
    with pytest.raises(ValueError, match="non-negative"):
        world.render([-1])


def test_shipped_photos_and_digits():
    pictures = photos(size=64)
    assert {"astronaut", "coffee", "chelsea", "china", "flower"} <= set(pictures)
    assert all(p.shape == (64, 64, 3) and 0 <= p.min() and p.max() <= 1 for p in pictures.values())
    images, labels = digits()
    assert images.shape == (1797, 8, 8) and set(labels) == set(range(10))


def test_photo_batch_standardises_the_named_photos_channel_by_channel():
    pictures = photos(size=16)
    batch = photo_batch(pictures, ["coffee", "astronaut"], mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.5))
    assert batch.shape == (2, 3, 16, 16)
    assert torch.allclose(batch[1, 2], (torch.from_numpy(pictures["astronaut"][..., 2]) - 0.3) / 0.5)
    with pytest.raises(KeyError, match="no photos named"):
        photo_batch(pictures, ["moon"], (0.5,) * 3, (0.5,) * 3)


def test_words_cover_every_caption_question_and_answer():
    scenes = ShapesWorld(seed=5, length=400).scenes(400)
    known = set(words())
    split = lambda text: set(text.replace(":", " : ").replace(",", " , ").replace("?", " ?").split())  # noqa: E731
    for i in range(len(scenes)):
        for template in CAPTION_TEMPLATES:
            if template != "relation" or scenes.n_objects[i] > 1:
                assert split(caption(scenes, i, template)) <= known
        for question in questions(scenes, i):
            assert split(question.text) | split(question.answer) <= known, question
