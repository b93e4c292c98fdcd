"""Colorizing on Ray (jkspnet.cluster, ``jkspnet colorize --ray``): the same outputs as one
process, a manifest that lets a rerun do only what is left, and no file lost, doubled or
half-written when a worker is killed.

The Ray tests share one local Ray (2 CPUs, no dashboard) and about 20 real photos; the others
(worker sizing, the manifest's format) start no Ray.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from jkspnet import cluster
from jkspnet.cli import main
from jkspnet.cluster import MANIFEST_NAME, Manifest, placement, worker_shape
from jkspnet.engines.batch import BatchOptions, FileOutcome, Job
from jkspnet.engines.plan import plan_outputs

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

PHOTOS = 20


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def manifest_rows(folder: Path) -> list[dict]:
    lines = (folder / MANIFEST_NAME).read_text().splitlines()
    return [json.loads(line) for line in lines]


def file_rows(folder: Path) -> list[dict]:
    return [row for row in manifest_rows(folder) if "status" in row]


# --------------------------------------------------------------------------- without Ray
def test_worker_shape_cpu_only():
    assert worker_shape([{"CPU": 2.0}]) == cluster.WorkerShape(2, 1.0, 0.0)  # one per CPU
    assert worker_shape([{"CPU": 16.0}, {"CPU": 16.0}]) == cluster.WorkerShape(32, 1.0, 0.0)
    # a node whose memory holds four workers runs four, on four CPUs each
    small = {"CPU": 16.0, "memory": 4 * placement._WORKER_MEMORY + 1e6}
    assert worker_shape([small]) == cluster.WorkerShape(4, 4.0, 0.0)
    # three workers on two 16-CPU nodes: 8 CPUs each, so that all three fit
    assert worker_shape([{"CPU": 16.0}, {"CPU": 16.0}], workers=3).cpus == 8.0
    assert worker_shape([{"CPU": 2.0}], workers=4) == cluster.WorkerShape(4, 0.5, 0.0)


def test_units_give_each_worker_several_and_keep_films_whole():
    photos = [Job(Path(f"{i}.jpg"), Path(f"out/{i}.jpg")) for i in range(72)]
    film = Job(Path("reel.mp4"), Path("out/reel.mp4"), film=True)
    units = placement.plan_units([*photos, film], batch_size=16, workers=2)
    assert units[0] == [film]  # the longest piece of work first
    assert [len(unit) for unit in units[1:]] == [9] * 8  # 4 units a worker, not 16+16+16+16+8
    assert [job for unit in units[1:] for job in unit] == photos  # in order, each once
    # batch_size caps
    assert {len(unit) for unit in placement.plan_units(photos * 10, 16, 2)} == {16}


def test_worker_shape_gpus():
    head = {"CPU": 4.0}  # a head node without GPUs runs no worker
    nodes = [head, {"CPU": 16.0, "GPU": 2.0}, {"CPU": 8.0, "GPU": 1.0}]
    assert worker_shape(nodes) == cluster.WorkerShape(3, 8.0, 1.0)
    shared = worker_shape(nodes, workers=6)  # two workers share each GPU
    assert shared.gpus == 0.5 and shared.cpus == 4.0
    assert worker_shape(nodes, workers=4).gpus == 0.5  # 4 on 3 GPUs: halves, so all fit


def test_manifest_keeps_the_latest_line_and_skips_a_torn_one(tmp_path):
    manifest = Manifest(tmp_path / MANIFEST_NAME)
    manifest.start({"a": 1}, files=2, todo=2)
    manifest.record(FileOutcome(Path("in/x.jpg"), tmp_path / "x.jpg", "failed", "truncated"))
    manifest.record(FileOutcome(Path("in/x.jpg"), tmp_path / "x.jpg", "done"))
    manifest.close()
    with open(manifest.path, "a") as stream:
        stream.write('{"run": 1, "output": "y.jpg", "status": "do')  # a driver killed mid-line
    files, runs = Manifest(manifest.path).read()
    assert files["x.jpg"]["status"] == "done" and "y.jpg" not in files
    assert runs[1]["settings"] == {"a": 1} and runs[1]["todo"] == 2
    again = Manifest(manifest.path)
    again.read()
    again.start({"a": 1}, files=1, todo=1)  # the torn line stays on its own
    again.close()
    assert json.loads(manifest.path.read_text().splitlines()[-1])["run"] == 2


def test_without_ray_one_line_names_the_extra(capsys, monkeypatch, tmp_path, fresh_weights):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    photo = tmp_path / "grey.png"
    Image.new("L", (32, 24), 128).save(photo)
    code, _, err = run(capsys, "colorize", photo, "-o", tmp_path / "out", "--ray")
    assert code == 2
    assert err.count("\n") == 1 and "jkspnet[cluster]" in err
    assert not (tmp_path / "out").exists()


def test_a_wrong_cluster_address_is_one_line_at_once(capsys, tmp_path):
    photo = tmp_path / "grey.png"
    Image.new("L", (32, 24), 128).save(photo)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    address = f"127.0.0.1:{port}"
    code, _, err = run(capsys, "colorize", photo, "-o", tmp_path / "out", "--ray", address)
    assert code == 2 and time.monotonic() - start < 30  # Ray alone retries for minutes
    assert err.count("\n") == 1 and f"could not join Ray at {address}" in err
    assert not (tmp_path / "out").exists()


def test_workers_needs_ray(capsys, tmp_path):
    code, _, err = run(capsys, "colorize", tmp_path, "-o", tmp_path / "out", "--workers", "2")
    assert code == 2 and "--workers is for --ray" in err


# ------------------------------------------------------------------------------ with Ray
@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for this module. Its workers inherit this process's environment, so they
    import the same jkspnet (set PYTHONPATH for a source tree that is not installed), and run
    at its priority (Ray's default puts them 15 lower: starved on a busy machine). In its
    workers, a photo named poison* kills the process (tests/ray_poison.py)."""
    os.environ.setdefault("RAY_worker_niceness", "0")
    root = str(Path(__file__).resolve().parents[2])  # for tests.ray_poison in the workers
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    ray.init(
        address="local",  # a Ray of its own, even beside one that `ray start` left running
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 << 20,
        logging_level="warning",
        runtime_env={
            "env_vars": {"PYTHONPATH": path},
            "worker_process_setup_hook": "tests.ray_poison.install",
        },
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """20 real photos (scikit-image's samples) of varied sizes and modes, and a corrupt one."""
    folder = tmp_path_factory.mktemp("photos")
    sources = [
        skimage.data.astronaut(),
        skimage.data.coffee(),
        skimage.data.chelsea(),
        skimage.data.rocket(),
        skimage.data.camera(),
        skimage.data.immunohistochemistry(),
        skimage.data.moon(),
    ]
    for index in range(PHOTOS):
        image = Image.fromarray(sources[index % len(sources)])
        side = 96 + 9 * index
        image = image.resize((side, side * image.height // image.width))
        if index % 4 == 0:
            image.convert("L").save(folder / f"photo_{index:02d}.png")
        elif index % 4 == 1:
            image.convert("RGB").save(folder / f"photo_{index:02d}.jpg", quality=90)
        else:
            image.convert("L").save(folder / f"photo_{index:02d}.jpg", quality=90)
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a photo")
    return folder


@pytest.fixture(scope="module")
def single(photos, fresh_weights, tmp_path_factory) -> Path:
    """The same photos colorized in this process, without Ray."""
    out = tmp_path_factory.mktemp("single")
    args = ["colorize", photos, "-o", out, "--weights", fresh_weights, "-q", "--batch-size", "4"]
    code = main([str(arg) for arg in args])
    assert code == 1  # the corrupt photo
    return out


def good(photos: Path) -> list[str]:
    return sorted(p.name for p in photos.iterdir() if p.name != "corrupt.jpg")


def test_ray_matches_one_process_and_records_every_file(
    capsys, local_ray, photos, single, fresh_weights, tmp_path
):
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "colorize", photos, "-o", out, "--weights", fresh_weights, "--ray",
        "--workers", "1", "--batch-size", "4", "-q",
    )  # fmt: skip
    assert code == 1, err
    assert f"colorized {PHOTOS}, failed 1, skipped 0" in stdout
    assert "corrupt.jpg" in err
    assert sorted(p.name for p in out.iterdir()) == sorted([*good(photos), MANIFEST_NAME])
    for name in good(photos):
        # One worker: its units are the single run's batches (4 photos in the same order; 21
        # files give one worker units of 4), so the network saw the same batches: byte for byte.
        assert (out / name).read_bytes() == (single / name).read_bytes(), name

    rows = manifest_rows(out)
    header, files = rows[0], rows[1:]
    assert header["run"] == 1 and header["files"] == PHOTOS + 1 and header["todo"] == PHOTOS + 1
    assert sorted(row["output"] for row in files) == sorted([*good(photos), "corrupt.jpg"])
    for row in files:
        assert row["run"] == 1 and row["input"] == str(photos / row["output"])
        assert row["worker"] and row["time"]
        if row["output"] == "corrupt.jpg":
            assert row["status"] == "failed" and row["reason"] and row["reason"] in err
        else:
            assert row["status"] == "done" and row["reason"] is None

    # A rerun does only what is missing or failed, and says how many of each.
    (out / good(photos)[3]).unlink()
    code, stdout, err = run(
        capsys, "colorize", photos, "-o", out, "--weights", fresh_weights, "--ray", "-q",
        "--batch-size", "4",
    )  # fmt: skip
    assert code == 1
    assert "19 done before; to do: 1 missing, 1 failed before" in err
    assert f"colorized 1, failed 1, skipped {PHOTOS - 1}" in stdout
    assert (out / good(photos)[3]).read_bytes() != b""
    rerun = [row for row in file_rows(out) if row["run"] == 2]
    assert sorted(row["output"] for row in rerun) == sorted(["corrupt.jpg", good(photos)[3]])

    # --overwrite with the same settings resumes too: the good photos are all done before.
    pairs = [pair for pair in plan_outputs([photos], out) if pair[0].name != "corrupt.jpg"]
    result = cluster.colorize_files(
        pairs,
        weights=fresh_weights,
        options=BatchOptions(overwrite=True, batch_size=4, progress=False),
        manifest=cluster.manifest_for(out, pairs),
        report=lambda line: None,
    )
    assert (result.done, result.skipped, result.failed) == (0, PHOTOS, 0)
    assert max(row["run"] for row in manifest_rows(out)) == 2  # nothing done, nothing recorded


def test_a_rerun_with_nothing_left_does_nothing(capsys, photos, fresh_weights, tmp_path):
    """No Ray is even started (none is running for this test unless another left it)."""
    good_only = tmp_path / "good"
    good_only.mkdir()
    for name in good(photos)[:3]:
        (good_only / name).write_bytes((photos / name).read_bytes())
    out = tmp_path / "out"
    pairs = plan_outputs([good_only], out)
    manifest = cluster.manifest_for(out, pairs)
    options = BatchOptions(progress=False)
    for pair in pairs:  # as a first run would have left them
        pair[1].parent.mkdir(exist_ok=True)
        pair[1].write_bytes(b"colour")
    manifest.start({}, files=3, todo=3)
    for source, target in pairs:
        manifest.record(FileOutcome(source, target, "done"))
    manifest.close()
    before = manifest.path.read_bytes()
    lines = []
    result = cluster.colorize_files(
        pairs, weights=fresh_weights, options=options, manifest=manifest, report=lines.append
    )
    assert (result.done, result.skipped, result.failed) == (0, 3, 0)
    assert lines == [
        f"resuming from {manifest.path}: 3 done before; to do: 0 missing, 0 failed before"
    ]
    assert manifest.path.read_bytes() == before


def test_a_killed_worker_loses_nothing_and_doubles_nothing(
    local_ray, photos, single, fresh_weights, tmp_path
):
    out = tmp_path / "out"
    pairs = plan_outputs([photos], out)
    manifest = cluster.manifest_for(out, pairs)
    killed: list[int] = []

    def kill_a_worker(outcome: FileOutcome) -> None:
        if killed:
            return
        worker = file_rows(out)[-1]["worker"]  # the manifest, read while the run is alive
        killed.append(int(worker.rsplit(":", 1)[1]))
        os.kill(killed[0], signal.SIGKILL)

    result = cluster.colorize_files(
        pairs,
        weights=fresh_weights,
        options=BatchOptions(batch_size=2, progress=False),
        workers=2,
        manifest=manifest,
        on_outcome=kill_a_worker,
        report=lambda line: None,
    )
    assert killed
    assert (result.done, result.failed) == (PHOTOS, 1)
    names = sorted(os.listdir(out))
    assert names == sorted([*good(photos), MANIFEST_NAME])  # no temporary file left
    for name in good(photos):
        assert np.abs(pixels(out / name) - pixels(single / name)).max() <= 1, name
    rows = file_rows(out)
    outputs = [row["output"] for row in rows]
    assert sorted(outputs) == sorted(set(outputs))  # each file recorded once
    assert len(outputs) == PHOTOS + 1
    # the two workers, and the one Ray restarted in the killed one's place
    assert len({row["worker"] for row in rows}) >= 3


def test_a_photo_that_kills_its_worker_every_time_fails_alone(
    local_ray, photos, single, fresh_weights, tmp_path
):
    """Ray restarts the worker and retries its unit; the retry does the unit's files one at a
    time, takes as done what an earlier attempt placed, and after TASK_RETRIES deaths on the
    poison photo fails it, while the run goes on."""
    folder = tmp_path / "in"
    folder.mkdir()
    names = good(photos)[:5]
    for name in names:
        (folder / name).write_bytes((photos / name).read_bytes())
    (folder / "poison.jpg").write_bytes((photos / names[0]).read_bytes())  # a good photo
    out = tmp_path / "out"
    pairs = plan_outputs([folder], out)
    lines: list[str] = []
    result = cluster.colorize_files(
        pairs,
        weights=fresh_weights,
        options=BatchOptions(batch_size=3, progress=False),
        workers=1,
        manifest=cluster.manifest_for(out, pairs),
        report=lines.append,
    )
    assert (result.done, result.skipped, result.failed) == (5, 0, 1)
    (failed,) = [o for o in result.outcomes if o.status == "failed"]
    assert failed.input.name == "poison.jpg"
    assert f"died each of the {cluster.TASK_RETRIES} times" in failed.reason
    assert any("poison.jpg" in line for line in lines)
    assert sorted(os.listdir(out)) == sorted([*names, MANIFEST_NAME])  # no temporary file
    for name in names:
        assert np.abs(pixels(out / name) - pixels(single / name)).max() <= 1, name
    rows = file_rows(out)
    assert sorted(row["output"] for row in rows) == sorted([*names, "poison.jpg"])  # once each
    # the first worker and one restarted in its place for each of the poison's deaths
    assert len({row["worker"] for row in rows}) >= 2


def test_the_readme_ray_data_recipe_runs_as_written(local_ray, photos, tmp_path):
    """README's recipe for users who already have a Dataset: its code block, executed."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    after = text.split("If you already have a Ray Dataset of paths", 1)[1]
    block = after.split("```python\n", 1)[1].split("```", 1)[0]
    sources = good(photos)[:4]
    out = tmp_path / "new" / "out"  # not there yet
    pairs = [(str(photos / name), str(out / f"{Path(name).stem}.png")) for name in sources]
    dataset = ray.data.from_items([{"input": src, "output": dst} for src, dst in pairs])
    namespace = {"dataset": dataset}
    exec(compile(block, "README.md", "exec"), namespace)
    rows = namespace["outcomes"].take_all()
    assert sorted(row["output"] for row in rows) == sorted(dst for _, dst in pairs)
    assert {row["status"] for row in rows} == {"done"}
    for _, dst in pairs:
        with Image.open(dst) as image:
            assert image.mode == "RGB"


def test_names_that_are_not_utf8_or_hold_a_newline(capsys, local_ray, fresh_weights, tmp_path):
    """Latin-1 bytes and a newline in names: colorized, recorded, and a rerun does nothing."""
    folder = tmp_path / "archive"
    folder.mkdir()
    latin1 = os.fsdecode(b"caf\xe9.png")  # not UTF-8: a surrogate escape in Python
    for name in (latin1, "two\nlines.png"):
        Image.new("L", (40, 30), 100).save(folder / name)
    out = tmp_path / "out"
    args = ["colorize", folder, "-o", out, "--ray", "--weights", fresh_weights, "-q"]
    code, stdout, _ = run(capsys, *args)
    assert code == 0 and stdout.strip() == "colorized 2, failed 0, skipped 0"
    assert sorted(os.listdir(os.fsencode(out))) == sorted(
        [os.fsencode(MANIFEST_NAME), b"caf\xe9.png", b"two\nlines.png"]
    )
    raw = (out / MANIFEST_NAME).read_bytes()
    raw.decode("utf-8")  # the manifest stays UTF-8 JSON...
    rows = file_rows(out)
    assert sorted(os.fsencode(row["output"]) for row in rows) == [b"caf\xe9.png", b"two\nlines.png"]
    assert {row["status"] for row in rows} == {"done"}  # ...and gives the names' bytes back
    assert manifest_rows(out)[0]["names"] == cluster.NAMES

    code, stdout, err = run(capsys, *args)
    assert code == 0 and stdout.strip() == "colorized 0, failed 0, skipped 2"
    assert "2 done before; to do: 0 missing, 0 failed before" in err
    assert (out / MANIFEST_NAME).read_bytes() == raw  # nothing more was done
