"""Split of images into train/val/test/holdout by a stable hash."""

import pandas as pd
import pytest

from spnrestore.dataset.split import assign_split, split_images
from spnrestore.errors import ConfigError


def table(cameras=4, images=500, qualities=(90, 60, 30)):
    return pd.DataFrame(
        [(f"cam{c}", f"IMG_{i:04d}.dng", q) for c in range(cameras) for i in range(images) for q in qualities],
        columns=["camera", "image", "quality"],
    )


def test_split_is_deterministic_and_independent_of_row_order():
    frame = table()
    first = split_images(frame)
    shuffled = frame.sample(frac=1.0, random_state=3)
    again = split_images(shuffled)
    assert (again.loc[frame.index] == first).all()


def test_fractions_are_respected_and_qualities_of_an_image_stay_together():
    frame = table(cameras=4, images=1000)
    split = split_images(frame)
    per_image = pd.concat([frame, split], axis=1).groupby(["camera", "image"])["split"].nunique()
    assert (per_image == 1).all()
    shares = split.value_counts(normalize=True)
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["val"] - 0.1) < 0.02 and abs(shares["test"] - 0.1) < 0.02


def test_test_and_holdout_images_never_reach_train_or_val():
    frame = table(cameras=5, images=300)
    split = split_images(frame, holdout_cameras=["cam3"])
    assert set(split[frame["camera"] == "cam3"]) == {"holdout"}
    assert "holdout" not in set(split[frame["camera"] != "cam3"])
    keys = list(zip(frame["camera"], frame["image"]))
    fitted = {k for k, s in zip(keys, split) if s in ("train", "val")}
    held = {k for k, s in zip(keys, split) if s in ("test", "holdout")}
    assert fitted and held and not fitted & held


def test_adding_images_never_moves_existing_ones():
    small, large = table(images=200), table(images=400)
    before = dict(zip(zip(small["camera"], small["image"]), split_images(small)))
    after = dict(zip(zip(large["camera"], large["image"]), split_images(large)))
    assert all(after[k] == v for k, v in before.items())
    assert assign_split("cam0", "IMG_0001.dng") == before[("cam0", "IMG_0001.dng")]


def test_custom_fractions_and_salt():
    frame = table(images=300)
    assert set(split_images(frame, {"train": 1.0, "val": 0.0, "test": 0.0})) == {"train"}
    assert (split_images(frame, salt="a") != split_images(frame, salt="b")).any()


def test_bad_configuration_is_a_clear_error():
    frame = table(images=10)
    with pytest.raises(ConfigError, match="sum to 1"):
        split_images(frame, {"train": 0.8, "val": 0.3, "test": 0.1})
    with pytest.raises(ConfigError, match="unknown split"):
        split_images(frame, {"train": 0.9, "dev": 0.1})
    with pytest.raises(ConfigError, match="cam9.*spelling"):
        split_images(frame, holdout_cameras=["cam9"])
