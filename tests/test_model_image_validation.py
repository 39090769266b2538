"""Whole-image validation: PCE of restored validation crops against every fingerprint, and checkpoint selection."""

import logging

import numpy as np
import pandas as pd
import pytest

from spnrestore import spn
from spnrestore.dataset import read_manifest
from spnrestore.errors import SpnRestoreError
from spnrestore.model.image_validation import crop_window, load_image_validation
from spnrestore.model.train import train
from spnrestore.model.validation import selection_key
from shard_helpers import build_dataset
from test_dataset_shards import synthetic_examples
from test_model_train import TINY

pytestmark = pytest.mark.filterwarnings("ignore:HF loss:UserWarning")  # no VGG file here: Haar fallback


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("image_val")
    examples, prints = synthetic_examples(root / "src", cameras=3, images=4, qualities=(30, 90))
    build_dataset(examples, prints, root / "data", patch=32, shard_size=64, max_patches_per_image=24)
    return root / "data", prints


def test_crop_window_is_centred_on_the_jpeg_grid():
    rows, cols = crop_window((1000, 3000), 1024)
    assert (rows.start, rows.stop) == (0, 1000)
    assert cols.start % 8 == 0 and cols.stop - cols.start == 1024 and abs(cols.start - (3000 - 1024) / 2) < 8


def test_plain_scores_and_the_summary_of_three_restorers(data):
    dataset, prints = data
    val = load_image_validation(read_manifest(dataset / "val" / "manifest.csv"), prints, per_camera=4, crop=128)
    assert len(val) == 3 * 2  # one val image per camera, two qualities
    assert {i.rgb.shape for i in val.images} == {(128, 128, 3)}
    plain = val.plain
    assert len(plain) == 6 * 3 and plain["match"].sum() == 6
    assert plain.loc[plain["match"], "pce"].min() > plain.loc[~plain["match"], "pce"].max()

    same = val.summary(val.scores(lambda rgb, residual, quality: residual), threshold=60, margin=0.25)
    assert same["pce_gain"] == 0 and same["pce_eligible"]
    assert same["pce_nonmatch_restored"] == same["pce_nonmatch_plain"]

    def true_term(rgb, residual, quality):  # the ideal restoration: the camera's own term, plus the residual
        camera = next(i.camera for i in val.images if i.rgb is rgb)
        return residual + 20 * val.fingerprint_crops[(256, 256)][camera] * spn.rgb2gray(rgb) / 255

    ideal = val.summary(val.scores(true_term), threshold=60, margin=0.25)
    assert ideal["pce_gain"] > 1 and ideal["pce_eligible"]
    assert ideal["pce_restored_q30"] > 2 * ideal["pce_plain_q30"]

    def invented(strength):  # evidence of another camera painted in
        def restore(rgb, residual, quality):
            camera = next(i.camera for i in val.images if i.rgb is rgb)
            other = {"cam0": "cam1", "cam1": "cam2", "cam2": "cam0"}[camera]
            return residual + strength * val.fingerprint_crops[(256, 256)][other] * spn.rgb2gray(rgb) / 255
        return val.summary(val.scores(restore), threshold=60, margin=0.25)

    first = val.images[0]
    rng = np.random.default_rng(0)
    destroyed = val.summary(val.scores(lambda rgb, residual, quality: rng.normal(0, 1, residual.shape).astype(np.float32)
                                       if rgb is first.rgb else residual), threshold=60, margin=0.25)
    assert destroyed["pce_gain"] < 0  # one image's evidence gone, the others unchanged

    wider, false_match = invented(2), invented(10)
    assert 1.25 * wider["pce_nonmatch_plain"] < wider["pce_nonmatch_restored"] < 60 and not wider["pce_eligible"]
    assert false_match["pce_nonmatch_restored"] > 60 and not false_match["pce_eligible"]


def test_missing_validation_file_is_named(data, tmp_path):
    dataset, prints = data
    rows = read_manifest(dataset / "val" / "manifest.csv").assign(jpeg=str(tmp_path / "gone.jpg"))
    with pytest.raises(SpnRestoreError, match="gone.jpg.*missing.*re-run"):
        load_image_validation(rows, prints, per_camera=1, crop=64)


def test_selection_prefers_eligible_rows_by_pce_gain():
    row = dict(eligible=True, gain=0.0, nonmatch_raise=0.0, pce_eligible=True, pce_gain=0.5, pce_nonmatch_restored=5.0)
    higher = dict(row, pce_gain=0.9, gain=-0.01)
    invents = dict(row, pce_gain=2.0, pce_eligible=False, pce_nonmatch_restored=30.0)
    less = dict(invents, pce_nonmatch_restored=20.0)
    assert max([row, higher, invents], key=selection_key) is higher
    assert max([invents, less], key=selection_key) is less
    assert selection_key(dict(row, eligible=False)) < selection_key(row)  # the patches' non-match check still counts


def test_training_with_fingerprints_selects_on_whole_images(data, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="spnrestore")
    dataset, prints = data
    cfg = dict(TINY, steps=20, checkpoint_every=10, val_image_crop=128)
    metrics = train(dataset, tmp_path / "m.pt", tmp_path / "w", cfg, fingerprints=prints)
    val = pd.read_csv(tmp_path / "w" / "val_log.csv")
    assert val["step"].tolist() == [0, 10, 20]
    assert (val["pce_pairs"] == 18).all() and val["pce_nonmatch_plain"].nunique() == 1
    assert val["pce_gain"].iloc[0] > 0  # the block filter alone, at step 0
    assert any("image validation: 6 validation JPEGs" in m for m in caplog.messages)
    best = val.loc[val["is_best"]].iloc[-1]
    assert metrics["selected_step"] == best["step"]
    eligible = val[val["eligible"] & val["pce_eligible"]]
    if len(eligible):
        assert best["pce_gain"] == eligible["pce_gain"].max()
    assert np.isfinite(val[["pce_plain_q30", "pce_restored_q90"]].to_numpy()).all()
