"""Configuration layering (yaml < .env < environment < --config) and its error messages."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from spnrestore.config import load_yaml
from spnrestore.paths import drive_paths
from spnrestore.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def load_config(project_dir, workdir=".", environ=None, overrides=None) -> dict:
    """The workflow's configuration as the workflow resolves it (``spnrestore.stages.plan``), with the ``.env``
    of ``workdir`` (its cache of validated configurations in a new folder: every call validates)."""
    from spnrestore.stages.plan import resolve_workflow_config

    base = load_yaml(Path(project_dir) / "config" / "config.yaml")
    return resolve_workflow_config(base, project_dir, overrides, {} if environ is None else environ,
                                   str(Path(workdir) / ".env"), tempfile.mkdtemp(prefix="spnrestore-config-"))


@pytest.fixture()
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_come_from_config_yaml(project_root, workdir):
    config = load_config(project_root, workdir, environ={})
    assert config["quality_levels"] == [90, 60, 30]
    assert config["on_bad_image"] == "skip"
    assert config["external_drive"] == ""
    from spnrestore.demo import demo_parameters

    assert demo_parameters(**config["demo"])["images_per_camera"] >= 48  # the demo drive's settings are complete


def test_precedence_dotenv_then_environment_then_command_line(project_root, workdir):
    (workdir / ".env").write_text("QUALITY_LEVELS=80,40\nSPN_IMAGES_DIR=from_dotenv\nCOMPRESSED_IMAGES_DIR=c_dotenv\n")
    config = load_config(project_root, workdir, environ={})
    assert config["quality_levels"] == [80, 40]
    assert config["spn_images_dir"] == "from_dotenv"

    config = load_config(project_root, workdir, environ={"QUALITY_LEVELS": "70", "SPN_IMAGES_DIR": "from_env"})
    assert config["quality_levels"] == [70]
    assert config["spn_images_dir"] == "from_env"
    assert config["compressed_images_dir"] == "c_dotenv"

    config = load_config(project_root, workdir, environ={"QUALITY_LEVELS": "70"},
                         overrides={"quality_levels": [50, 20], "SPN_IMAGES_DIR": "cli"})
    assert config["quality_levels"] == [50, 20]
    assert config["spn_images_dir"] == "cli"


def test_command_line_accepts_env_style_quality_list(project_root, workdir):
    config = load_config(project_root, workdir, environ={}, overrides={"QUALITY_LEVELS": "95,35"})
    assert config["quality_levels"] == [95, 35]
    for key in ("quality_levels", "QUALITY_LEVELS"):  # both spellings, as Snakemake passes them (text, or one int)
        assert load_config(project_root, workdir, environ={}, overrides={key: "90,60,30"})["quality_levels"] == [90, 60, 30]
        assert load_config(project_root, workdir, environ={}, overrides={key: 40})["quality_levels"] == [40]


@pytest.mark.parametrize(
    ("dotenv", "words"),
    [
        ("QUALITY_LEVELS=90,abc\n", ["QUALITY_LEVELS", "'abc'", "not an integer"]),
        ("QUALITY_LEVELS=0\n", ["quality_levels", "0", "minimum of 1"]),
        ("QUALITY_LEVELS=101\n", ["quality_levels", "101", "maximum of 100"]),
        ("QUALITY_LEVELS=90,90\n", ["quality_levels", "duplicated"]),
        ("QUALITY_LEVEL=90\n", ["unknown key", "QUALITY_LEVEL", ".env.example"]),
    ],
)
def test_bad_dotenv_values_name_key_value_and_fix(project_root, workdir, dotenv, words):
    (workdir / ".env").write_text(dotenv)
    with pytest.raises(ConfigError) as err:
        load_config(project_root, workdir, environ={})
    message = str(err.value)
    for word in words:
        assert word in message
    assert ".env" in message


def test_unknown_and_mistyped_config_keys(project_root, workdir):
    with pytest.raises(ConfigError, match="unknown config key 'batch_size'.*--config"):
        load_config(project_root, workdir, environ={}, overrides={"batch_size": 4})
    with pytest.raises(ConfigError, match="'batches_per_camera'.*not of type 'integer'"):
        load_config(project_root, workdir, environ={}, overrides={"batches_per_camera": "many"})
    with pytest.raises(ConfigError, match="unknown config key 'develop.gama'"):
        load_config(project_root, workdir, environ={}, overrides={"develop": {"gama": [2, 4]}})


def test_wrong_type_in_config_yaml(project_root, tmp_path):
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    src = project_root / "config"
    (project / "config" / "schema.yaml").write_text((src / "schema.yaml").read_text())
    (project / "config" / "config.yaml").write_text("batches_per_camera: sixteen\n")
    with pytest.raises(ConfigError, match="batches_per_camera.*sixteen.*integer"):
        load_config(project, tmp_path, environ={})


def test_missing_drive_is_an_error_with_the_fix(project_root, workdir):
    config = load_config(project_root, workdir, environ={"EXTERNAL_DRIVE": str(workdir / "not-mounted")})
    with pytest.raises(ConfigError) as err:
        drive_paths(config, project_root, workdir)
    assert "EXTERNAL_DRIVE" in str(err.value) and "not-mounted" in str(err.value) and "mounted" in str(err.value)


def test_drive_without_original_folder(project_root, workdir):
    (workdir / "drive").mkdir()
    config = load_config(project_root, workdir, environ={"EXTERNAL_DRIVE": str(workdir / "drive")})
    with pytest.raises(ConfigError, match="ORIGINAL_IMAGES_DIR"):
        drive_paths(config, project_root, workdir)


def test_relative_folders_are_under_the_drive(project_root, workdir):
    (workdir / "drive" / "Images" / "Original").mkdir(parents=True)
    config = load_config(project_root, workdir, environ={"EXTERNAL_DRIVE": str(workdir / "drive"),
                                                         "SPN_IMAGES_DIR": "/abs/spn"})
    paths = drive_paths(config, project_root, workdir)
    assert paths.original == workdir / "drive" / "Images" / "Original"
    assert paths.compressed == workdir / "drive" / "Images" / "Compressed"
    assert str(paths.spn) == "/abs/spn"
    assert paths.results == workdir / "results" and not paths.demo


def test_empty_drive_selects_demo(project_root, workdir):
    paths = drive_paths(load_config(project_root, workdir, environ={}), project_root, workdir)
    assert paths.demo and paths.drive == project_root / ".demo" / "drive"
    assert paths.results == project_root / ".demo" / "results"


def test_nested_command_line_values_take_the_schema_types(project_root, workdir):
    """Snakemake hands nested --config values over as strings."""
    config = load_config(project_root, workdir, environ={}, overrides={
        "demo": {"cameras": "3", "prnu_strength": "0.02"},
        "dataset": {"max_patches_per_image": "null", "patch": "64"},
        "train": {"settings": {"steps": "12", "lr": "1e-3", "progress": "false", "model": {"width": "8"}}},
    })
    assert config["demo"]["cameras"] == 3 and config["demo"]["prnu_strength"] == 0.02
    assert config["dataset"]["max_patches_per_image"] is None and config["dataset"]["patch"] == 64
    settings = config["train"]["settings"]
    assert settings["steps"] == 12 and settings["lr"] == 1e-3 and settings["progress"] is False
    assert settings["model"] == {"width": 8}


def test_each_default_is_written_once():
    """The configuration's defaults are the schema's (config.yaml overrides nothing by default), and the library's
    defaults for casework (noise level, decision threshold) are the schema's spn.sigma and spn.pce_threshold."""
    from spnrestore.config import default_config
    from spnrestore.spn import PCE_THRESHOLD
    from spnrestore.spn.residual import DEFAULT_SIGMA

    assert load_yaml(ROOT / "config" / "config.yaml") == {}
    assert default_config()["spn"]["sigma"] == DEFAULT_SIGMA
    assert default_config()["spn"]["pce_threshold"] == PCE_THRESHOLD


def test_a_validated_configuration_is_reused_and_a_changed_layer_is_validated_again(tmp_path):
    """The workflow's configuration is cached by its merged layers and the schema (a dry-run skips jsonschema);
    the cached and the freshly validated values are equal, a changed layer is validated (and refused) again,
    and a damaged entry is validated again."""
    import subprocess
    import sys

    from spnrestore.stages.plan import CACHE_DIR, resolve_workflow_config

    def resolve(overrides):
        return resolve_workflow_config({}, ROOT, overrides, {}, None, tmp_path)

    first = resolve({"quality_levels": "90,30"})
    entries = list((tmp_path / CACHE_DIR / "config").glob("*.json"))
    assert len(entries) == 1 and resolve({"quality_levels": "90,30"}) == first
    with pytest.raises(ConfigError, match="quality_levels"):
        resolve({"quality_levels": "90,300"})
    entries[0].write_text("{damaged")
    assert resolve({"quality_levels": "90,30"}) == first
    code = ("import sys; from spnrestore.stages.plan import resolve_workflow_config as r; "
            f"r({{}}, {str(ROOT)!r}, {{'quality_levels': '90,30'}}, {{}}, None, {str(tmp_path)!r}); "
            "sys.exit('jsonschema' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
