"""Reliability checks that need no workflow run (issue 7): a real full disk, no shell in the rules, checkpoints
loaded only with weights_only=True, outputs that cannot leave the drive and the results folder whatever the
names, and training without a validation split. The table of cases is in docs/reliability.md."""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from spnrestore.paths import ORIGINAL, DrivePaths, drive_paths
from spnrestore.demo import make_demo_drive
from spnrestore.discovery import discover
from spnrestore.errors import ConfigError
from spnrestore.methods import registered

ROOT = Path(__file__).resolve().parents[1]
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]

# ------------------------------------------------------------------------------------ a real full disk

FILL = """
import json, sys, traceback
from pathlib import Path
from spnrestore.paths import DrivePaths
from spnrestore.stages.develop import develop_batch
from spnrestore.config import default_config

out, originals, config = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
images = [{"camera": "Cam", "image": p.stem, "path": str(p), "format": "dng", "batch": "b0000", "role": "test"}
          for p in sorted(originals.rglob("*.DNG"))]
try:
    develop_batch(images, DrivePaths(out, originals, out / "Compressed", out / "SPN", out), [90, 60, 30],
                  default_config()["develop"], "420", "skip", 5.0, out / "table.csv")
    error = None
except Exception as exc:
    error = {"type": type(exc).__name__, "message": str(exc), "errno": getattr(exc, "errno", None)}
files = {str(p.relative_to(out)): p.read_bytes().hex() for p in sorted(out.rglob("*")) if p.is_file()}
print(json.dumps({"error": error, "files": files}))
"""


def mount_namespace() -> list[str] | None:
    """``unshare`` arguments that give a private mount namespace in which tmpfs can be mounted, or None."""
    if shutil.which("unshare") is None:
        return None
    for args in (["unshare", "--mount"], ["unshare", "--mount", "--map-root-user"]):
        probe = subprocess.run([*args, "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", "/mnt"],
                               capture_output=True, text=True)
        if probe.returncode == 0:
            return args
    return None


@pytest.fixture(scope="module")
def full_disk(tmp_path_factory):
    """develop_batch of four 256x384 originals writing into a 300 KiB tmpfs (mounted in a private mount
    namespace, gone when the process ends); returns the error and the bytes of every file left there."""
    args = mount_namespace()
    if args is None:
        pytest.skip("cannot mount a tmpfs here (needs root or unprivileged user namespaces); "
                    "tests/test_jpeg.py::test_failed_write_leaves_no_file covers ENOSPC with a patched write")
    base = tmp_path_factory.mktemp("full_disk")
    drive = make_demo_drive(base / "drive", cameras=1, images_per_camera=4, height=256, width=384, seed=4)
    (base / "fill.py").write_text(FILL)
    mount = base / "mnt"
    mount.mkdir()
    script = (f'mount -t tmpfs -o size=300k tmpfs "$1" && exec "{sys.executable}" "$2" "$1" "$3" "$4"')
    proc = subprocess.run([*args, "sh", "-c", script, "sh", str(mount), str(base / "fill.py"),
                           str(drive / "Images" / "Original"), str(ROOT / "config" / "config.yaml")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(mount.iterdir()) == []  # the tmpfs lived only in the child's mount namespace
    return json.loads(proc.stdout.splitlines()[-1])


def test_full_disk_stops_the_batch_and_leaves_no_half_written_file(full_disk):
    error, files = full_disk["error"], full_disk["files"]
    assert error is not None and (error["errno"] == 28 or "No space left" in error["message"])
    assert not [name for name in files if name.endswith(".tmp")]
    assert "table.csv" not in files  # the batch is not recorded as done
    assert any(name.endswith(".jpg") for name in files)  # the disk filled up part-way through the batch
    for name, data in files.items():  # every file under its final name is whole
        buffer = np.frombuffer(bytes.fromhex(data), np.uint8)
        if name.endswith((".jpg", ".png")):
            assert cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED) is not None, name
        else:
            assert name.endswith(".npy"), name
            assert np.lib.format.read_array(io.BytesIO(buffer.tobytes())).ndim == 2, name


def test_full_disk_error_names_the_file_and_says_the_disk_is_full(full_disk):
    message = full_disk["error"]["message"]
    assert "No space left" in message or "disk is full" in message
    assert re.search(r"/(Compressed|SPN)/Cam/\S+\.(jpg|npy|png)", message), message


# --------------------------------------------------------------- no shell, weights_only, nothing escapes


def shell_commands(text: str) -> list[str]:
    """The command text of every ``shell:`` directive of a Snakefile (the indented block after it)."""
    commands = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)shell:\s*(.*)$", line)
        if not match:
            continue
        block = [match[2]]
        for follow in lines[i + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= len(match[1]):
                break
            block.append(follow)
        commands.append("\n".join(block))
    return commands


def unquoted_placeholders(command: str) -> list[str]:
    """Placeholders of a shell command that insert a file, name or parameter without ``:q``."""
    return [p for p in re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", command)
            if re.match(r"(input|output|log|params|wildcards|benchmark)\b", p) and not p.endswith(":q")]


def test_the_shell_checker_finds_unquoted_names():
    rules = textwrap.dedent('''
        rule a:
            shell:
                "convert {input:q} {output} && echo {wildcards.camera} {threads} {{literal}}"

        rule b:
            shell: "cp {input.raw:q} {output.jpg:q}"
    ''')
    commands = shell_commands(rules)
    assert len(commands) == 2
    assert unquoted_placeholders(commands[0]) == ["output", "wildcards.camera"]
    assert unquoted_placeholders(commands[1]) == []


def test_no_rule_passes_a_name_through_a_shell_unquoted():
    """Every rule runs a Python script; should a ``shell:`` appear, its file and name placeholders need ``:q``."""
    texts = {path.name: path.read_text() for path in RULE_FILES}
    for name, text in texts.items():
        for command in shell_commands(text):
            assert unquoted_placeholders(command) == [], f"{name}: {command}"
        assert not re.search(r"^\s+run:\s*$", text, re.MULTILINE), f"{name}: a run: block"
    rules = re.findall(r"^rule (\w+):", "".join(texts.values()), re.MULTILINE)
    scripts = re.findall(r"^    script:\s*$", "".join(texts.values()), re.MULTILINE)
    assert len(rules) > 10 and len(scripts) == len(rules) - 1  # all but the target rule `all`
    assert not any(shell_commands(text) for text in texts.values())


def calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text(), str(path))) if isinstance(node, ast.Call)]


def dotted(node: ast.AST) -> str:
    return f"{dotted(node.value)}.{node.attr}" if isinstance(node, ast.Attribute) else getattr(node, "id", "")


def test_scripts_start_no_shell():
    for path in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                    for alias in node.names} | {node.module for node in ast.walk(tree)
                                                 if isinstance(node, ast.ImportFrom)}
        assert not imported & {"subprocess", "shlex", "pty"}, path
        assert not [dotted(c.func) for c in calls(path) if dotted(c.func) in ("os.system", "os.popen")], path


def test_checkpoints_are_loaded_only_with_weights_only():
    torch_loads = [(path, call) for folder in ("src", "workflow", "bench")
                   for path in sorted((ROOT / folder).rglob("*.py")) for call in calls(path)
                   if dotted(call.func) == "torch.load"]
    assert len(torch_loads) >= 2  # checkpoint.load_checkpoint and vgg.load_vgg16_features
    for path, call in torch_loads:
        flags = {k.arg: k.value for k in call.keywords}
        assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True, (
            f"{path}:{call.lineno}")
    pickles = [f"{p}:{c.lineno}" for folder in ("src", "workflow") for p in sorted((ROOT / folder).rglob("*.py"))
               for c in calls(p) if dotted(c.func) in ("pickle.load", "pickle.loads")]
    assert pickles == []


HOSTILE = ["-rf", "--config=x", "a b", "q'uote", 'd"q', "$HOME", "`id`", "$(id)", "фото ü", "x\\y", "~root",
           "a..", "*", "?", "{camera}", ";", "|", "&"]


def test_names_from_the_drive_cannot_leave_the_output_folders(tmp_path):
    """Camera and image names are folder entries: never empty, '.', '..' or containing '/'; hidden entries are not
    scanned. Every output path built from them stays inside its configured folder."""
    original = tmp_path / "drive" / "Images" / "Original"
    for camera in HOSTILE:
        (original / camera).mkdir(parents=True)
        for name in HOSTILE:
            (original / camera / f"{name}.DNG").write_bytes(b"II*\x00")
        (original / camera / "..DNG").write_bytes(b"II*\x00")
    (original / "..." / "x").mkdir(parents=True)
    images, _ = discover(original, batches=4)
    assert {i.camera for i in images} == set(HOSTILE)
    assert {i.image for i in images} == set(HOSTILE)
    roots = {"compressed": tmp_path / "drive" / "Images" / "Compressed", "spn": tmp_path / "drive" / "Images" / "SPN",
             "results": tmp_path / "results"}
    drive = DrivePaths(tmp_path / "drive", original, roots["compressed"], roots["spn"], roots["results"])
    methods = [name for name, method in registered().items() if method.computed and name != "plain"]
    for i in images:
        assert i.camera not in ("", ".", "..") and "/" not in i.camera + i.image
        outputs = [(drive.jpeg(i.camera, 30, i.image), roots["compressed"]),
                   (drive.residual(i.camera, ORIGINAL, i.image), roots["spn"]),
                   *((drive.method_residual(i.camera, method, 30, i.image), roots["spn"]) for method in methods),
                   (drive.fingerprint(i.camera), roots["spn"]),
                   (drive.calibration_set(i.camera), roots["spn"]),
                   (drive.calibration(i.camera), roots["spn"]),
                   (drive.restore_table(i.camera), roots["results"]),
                   (drive.batch_table("develop", i.camera, i.batch), roots["results"])]
        for path, root in outputs:
            assert path.resolve().is_relative_to(root.resolve()), path
            assert path.resolve().relative_to(root.resolve()).parts[:1] in ((i.camera,), ("batches",), ("restore",))


@pytest.mark.parametrize("link, skipped_name", [("Far", "Far"), ("Cam/flat", "b.DNG")])
def test_folder_symlink_out_of_the_drive_is_skipped(tmp_path, link, skipped_name):
    """A camera folder or a flat-field folder that is a symlink leaving the Original folder is not followed."""
    original = tmp_path / "Original"
    (original / "Cam").mkdir(parents=True)
    (original / "Cam" / "a.DNG").write_bytes(b"II*\x00")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.DNG").write_bytes(b"II*\x00")
    (original / link).symlink_to(tmp_path / "elsewhere")
    images, skipped = discover(original, batches=4, flat_folder="flat")
    assert [(i.camera, i.image) for i in images] == [("Cam", "a")]
    assert [(Path(s.path).name, "outside" in s.reason) for s in skipped] == [(skipped_name, True)]


def drive_config(drive: Path, **folders) -> dict:
    return {"external_drive": str(drive), "original_images_dir": "Images/Original",
            "compressed_images_dir": "Images/Compressed", "spn_images_dir": "Images/SPN", "results_dir": "",
            **folders}


@pytest.mark.parametrize("key, value", [("compressed_images_dir", "Images/Original"),
                                        ("spn_images_dir", "Images/Original/SPN"),
                                        ("results_dir", "{drive}/Images/Original/results")])
def test_output_folder_inside_the_originals_is_refused(tmp_path, key, value):
    drive = tmp_path / "drive"
    (drive / "Images" / "Original").mkdir(parents=True)
    with pytest.raises(ConfigError, match=key.upper() if key != "results_dir" else key):
        drive_paths(drive_config(drive, **{key: value.format(drive=drive)}), ROOT, tmp_path)


def test_default_output_folders_are_beside_the_originals(tmp_path):
    drive = tmp_path / "drive"
    (drive / "Images" / "Original").mkdir(parents=True)
    paths = drive_paths(drive_config(drive), ROOT, tmp_path)
    for folder in (paths.compressed, paths.spn, paths.results):
        assert not folder.resolve().is_relative_to(paths.original.resolve())
        assert not paths.original.resolve().is_relative_to(folder.resolve())
    assert paths.results == tmp_path / "results"


# ------------------------------------------------------------------------------ training without val


@pytest.mark.filterwarnings("ignore:HF loss:UserWarning")
def test_training_without_validation_examples_writes_every_declared_output(tmp_path):
    from spnrestore.model.train import train
    from shard_helpers import build_dataset
    from test_dataset_shards import synthetic_examples
    from test_model_train import TINY

    examples, prints = synthetic_examples(tmp_path / "src", cameras=2, images=2)
    examples["split"] = "train"
    build_dataset(examples, prints, tmp_path / "data", patch=32, shard_size=64, max_patches_per_image=24)
    train(tmp_path / "data", tmp_path / "m.pt", tmp_path / "work", dict(TINY, steps=4))
    assert (tmp_path / "m.pt").is_file() and (tmp_path / "work" / "train_log.csv").is_file()
    assert (tmp_path / "work" / "val_log.csv").is_file()
