"""Issue 23: kills and signals, special files, deep trees, any file name, slow clients.

Each test stands for one break the fault-tolerance review found; the standing benchmark that
kills real runs at random moments is ``benchmarks/bench_faults.py``.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from jkspnet.cli import main
from jkspnet.media.files import TEMPORARY_PREFIX, host_tag, is_temporary
from jkspnet.media.photos import load_photo, photo_pixels

from .hostile import make_deep_tree, remove_deep_tree
from .training.runs import TINY


def _dead_pid() -> int:
    """The number of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _plant_temporary(folder: Path, name: str) -> Path:
    """What a writer SIGKILLed mid-write leaves: a half-written temporary of a dead process."""
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{TEMPORARY_PREFIX}{host_tag()}.{_dead_pid()}.abcdefgh.{name}.tmp"
    temporary.write_bytes(b"\x89PNG half")
    return temporary


def _temporaries(root: Path) -> list[str]:
    return [name for _, _, files in os.walk(root) for name in files if is_temporary(name)]


def _grey(path: Path, size: tuple[int, int] = (24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, 120).save(path)
    return path


# ------------------------------------------------------------------------------ temporaries
def test_a_stale_temporary_is_removed_by_the_next_run(capsys, tmp_path, fresh_weights):
    photos = tmp_path / "in"
    _grey(photos / "a.png")
    _grey(photos / "sub" / "b.png")
    out = tmp_path / "out"
    planted = [_plant_temporary(out, "a.png"), _plant_temporary(out / "sub", "b.png")]
    (out / "notes.tmp").write_text("a user's file, not ours")
    code = main(["colorize", str(photos), "-r", "-o", str(out), "--weights", str(fresh_weights)])
    assert code == 0, capsys.readouterr().err
    assert not any(path.exists() for path in planted)
    assert (out / "notes.tmp").read_text() == "a user's file, not ours"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "a.png",
        "sub/b.png",
    ]


@pytest.mark.slow  # over 60 s on a busy 2-core machine (processes of their own)
def test_export_eval_and_train_remove_their_stale_temporaries(
    capsys, tmp_path, fresh_weights, photos
):
    target = tmp_path / "export" / "model.pt"
    planted = [_plant_temporary(target.parent, "model.pt")]
    assert main(["export", "--weights", str(fresh_weights), "-o", str(target)]) == 0
    report = tmp_path / "report"
    planted.append(_plant_temporary(report, "summary.json"))  # an empty report folder else
    evaluation = ["eval", "--data", str(photos), "--weights", str(fresh_weights), "-q"]
    code = main([*evaluation, "--out", str(report), "--limit", "2", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    run = tmp_path / "run"
    planted += [_plant_temporary(run, "best"), _plant_temporary(run / "checkpoints", "step_1")]
    (run / "config.toml").write_text("")  # killed before its first checkpoint
    train = ["train", "--data", str(photos), "--out", str(run), "--max-steps", "1", *TINY, "-q"]
    assert main(train) == 0, capsys.readouterr().err
    assert [path for path in planted if path.exists()] == []


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow  # over 60 s on a busy 2-core machine (processes of their own)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_mid_run_is_handled_like_ctrl_c(tmp_path, fresh_weights, signum):
    photos = tmp_path / "in"
    for index in range(40):
        _grey(photos / f"p{index:02d}.png", (640, 480))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jkspnet", "colorize", str(photos), "-o", str(out), "-q"]
    command += ["--weights", str(fresh_weights), "--batch-size", "2"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert _wait_for(lambda: out.is_dir() and any(out.glob("*.png")), 240), run.communicate()
    run.send_signal(signum)
    _, stderr = run.communicate(timeout=240)
    assert run.returncode == 128 + signum, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1] == f"interrupted ({signal.Signals(signum).name})"
    assert lines[-2].startswith("stopped: colorized ") and "not done" in lines[-2], lines
    written = sorted(out.glob("*.png"))
    assert 0 < len(written) < 40 and _temporaries(out) == []
    done = int(lines[-2].split()[2].rstrip(","))
    assert done == len(written)  # every output counted is whole, and the others are not there
    for path in written:
        assert Image.open(path).size == (640, 480)


def test_a_signal_wrapped_by_the_code_it_interrupted_is_still_an_interruption(
    capsys, monkeypatch, tmp_path
):
    """A SIGTERM raised while a lazily imported module builds a dataclass reaches main as
    Python 3.11's RuntimeError('Error calling __set_name__ ...'): it ends as an interruption
    (one line, 143), not a traceback with exit 1. Other errors still propagate: they are bugs."""
    from jkspnet.commands import colorize
    from jkspnet.errors import Interrupted

    def interrupted_inside_an_import(args):
        try:
            raise Interrupted(signal.SIGTERM)
        except KeyboardInterrupt as error:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from error

    monkeypatch.setattr(colorize, "run", interrupted_inside_an_import)
    assert main(["colorize", str(tmp_path / "x.jpg"), "-o", str(tmp_path / "o")]) == 143
    assert capsys.readouterr().err.splitlines() == ["interrupted (SIGTERM)"]

    def a_bug(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(colorize, "run", a_bug)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["colorize", str(tmp_path / "x.jpg"), "-o", str(tmp_path / "o")])


def test_rays_crash_handler_is_off_before_ray_is_first_imported():
    """Ray reads RAY_DISABLE_FAILURE_SIGNAL_HANDLER when it is first imported; set later, its
    crash handler took a SIGTERM during ray.init and aborted the driver (status -6)."""
    pytest.importorskip("ray")
    code = (
        "import os; os.environ.pop('RAY_DISABLE_FAILURE_SIGNAL_HANDLER', None)\n"
        "from jkspnet.cluster.driver import import_ray; import_ray()\n"
        "from ray._private import ray_constants\n"
        "assert ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]


# ----------------------------------------------------------------------------- special files
def test_a_fifo_beside_a_good_photo_is_refused_and_the_batch_goes_on(tmp_path, fresh_weights):
    photos = tmp_path / "in"
    _grey(photos / "good.png")
    os.mkfifo(photos / "x.jpg")  # opening it to read would block for ever
    out = tmp_path / "out"
    command = [sys.executable, "-m", "jkspnet", "colorize", str(photos), str(photos / "x.jpg")]
    command += ["-o", str(out), "--weights", str(fresh_weights), "-q"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {photos / 'x.jpg'}: not a regular file (a named pipe (FIFO))"
    ]
    assert (out / "good.png").is_file() and not (out / "x.png").exists()
    assert photo_pixels(photos / "x.jpg") == 0
    with pytest.raises(Exception, match="not a regular file"):
        load_photo(photos / "x.jpg")


# ------------------------------------------------------------------------------------ trees
def test_1500_nested_folders_and_a_path_over_path_max(capsys, tmp_path, fresh_weights):
    tree = tmp_path / "tree"
    _grey(tree / "top.png")
    try:
        fd = make_deep_tree(tree, 1500)  # 3,000 characters: deep, still under PATH_MAX
        try:
            Image.new("L", (8, 8), 90).save(f"/proc/self/fd/{fd}/deep.png")
        finally:
            os.close(fd)
        (tree / "long").mkdir()
        fd = make_deep_tree(tree / "long", 900, name="folder")  # 6,300 characters: over
        try:
            Image.new("L", (8, 8), 90).save(f"/proc/self/fd/{fd}/lost.png")
        finally:
            os.close(fd)
        out = tmp_path / "out"
        code = main(["colorize", str(tree), "-r", "-o", str(out), "--weights", str(fresh_weights)])
        captured = capsys.readouterr()
        assert code == 1  # the photo that cannot be reached is a failure, not a silence
        errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].endswith(
            ": cannot list this folder (path too long for the system)"
        )
        assert errors[0].startswith(f"error: {tree / 'long' / 'folder' / 'folder'}")
        assert captured.out.strip() == "colorized 2, failed 1, skipped 0"
        assert (out / "top.png").is_file()
        assert out.joinpath(*["d"] * 1500, "deep.png").is_file()
    finally:
        remove_deep_tree(tree)
        if (tmp_path / "out").exists():
            remove_deep_tree(tmp_path / "out")


def test_a_folder_that_cannot_be_listed_is_a_failed_row(
    capsys, tmp_path, fresh_weights, monkeypatch
):
    photos = tmp_path / "in"
    _grey(photos / "a.png")
    sealed = photos / "sealed"
    _grey(sealed / "b.png")
    real_scandir = os.scandir

    def scandir(path="."):  # chmod 000 binds no one as root: the kernel's refusal, simulated
        if Path(os.fsdecode(path)) == sealed:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    code = main(["colorize", str(photos), "-r", "-o", str(tmp_path / "out"), "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.splitlines() == [
        f"error: {sealed}: cannot list this folder (permission denied)"
    ]
    assert captured.out.strip() == "colorized 1, failed 1, skipped 0"


# ------------------------------------------------------------------------------------ names
def test_latin1_and_newline_names_plain(capsys, tmp_path, fresh_weights):
    folder = tmp_path / "archive"
    folder.mkdir()
    latin1 = os.fsdecode(b"caf\xe9.png")  # a byte that is not UTF-8: a surrogate escape
    _grey(folder / latin1)
    _grey(folder / "two\nlines.png")
    (folder / "bad\nname.jpg").write_text("not a photo")
    out = tmp_path / "out"
    code = main(["colorize", str(folder), "-o", str(out), "--weights", str(fresh_weights), "-q"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.splitlines() == [  # one line, the name quoted
        f'error: "{folder}/bad\\nname.jpg": not an image, or a format this program cannot read'
    ]
    assert captured.out.strip() == "colorized 2, failed 1, skipped 0"
    assert sorted(os.listdir(os.fsencode(out))) == [b"caf\xe9.png", b"two\nlines.png"]
    code = main(["colorize", str(folder / latin1), "-o", str(out / "one.png"), "-q"])
    assert code == 0
    assert capsys.readouterr().out == f"wrote {out / 'one.png'}\n"
    code = main(["colorize", str(folder / latin1), "-o", str(out / latin1), "--overwrite", "-q"])
    assert code == 0 and capsys.readouterr().out == f'wrote "{out}/caf\\xe9.png"\n'


# --------------------------------------------------------------------------------- manifest
def test_a_full_disk_under_the_manifest_stops_with_one_line_and_no_torn_line(tmp_path, monkeypatch):
    from jkspnet import cluster
    from jkspnet.engines.batch import FileOutcome

    manifest = cluster.Manifest(tmp_path / cluster.MANIFEST_NAME)
    manifest.start({}, files=2, todo=2)
    manifest.record(FileOutcome(Path("a.png"), tmp_path / "a.png", "done"))
    whole = manifest.path.read_bytes()
    real_write = os.write

    def full_disk(fd, data):  # the disk takes half the line, then refuses
        if fd == manifest._fd:
            real_write(fd, data[: len(data) // 2])
            monkeypatch.setattr(os, "write", refuse)
            return len(data) // 2
        return real_write(fd, data)

    def refuse(fd, data):
        raise OSError(28, os.strerror(28))

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(cluster.ManifestError) as caught:
        manifest.record(FileOutcome(Path("b.png"), tmp_path / "b.png", "done"))
    monkeypatch.undo()
    assert str(caught.value) == (
        f"{manifest.path}: cannot record the run (No space left on device); it stops here"
    )
    assert manifest.path.read_bytes() == whole  # cut back to its last whole line


# ----------------------------------------------------------------------------------- server
def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, 110).save(buffer, format="PNG")
    return buffer.getvalue()


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "jkspnet-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class _Server:
    """A real uvicorn server in a thread, with the protocol ``jkspnet serve`` uses."""

    def __init__(self, app) -> None:
        import uvicorn

        from jkspnet.serve.api import json_errors_protocol

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            app, host="0.0.0.0", port=self.port, log_level="error", http=json_errors_protocol()
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        assert _wait_for(lambda: self.server.started, 30)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def request(
        self, raw: bytes, source: str = "127.0.0.1", timeout: float = 60
    ) -> tuple[int, dict, bytes]:
        """Send ``raw`` (a whole HTTP request) from ``source``; (status, headers, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout, (source, 0)) as conn:
            conn.sendall(raw)
            return _read_response(conn)


def _read_response(conn: socket.socket) -> tuple[int, dict, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    length = int(headers.get("content-length", len(body)))
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _post_raw(body: bytes, kind: str) -> bytes:
    head = (
        f"POST /api/colorize HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def _slow_upload(port: int, statuses: list, errors: list) -> None:
    """One byte every 0.5 s from 127.0.0.2 (another client) until the server answers."""
    body, kind = _multipart(_png((64, 48)))
    raw = _post_raw(body, kind)
    head_end = raw.index(b"\r\n\r\n") + 4
    with socket.create_connection(("127.0.0.1", port), 60, ("127.0.0.2", 0)) as conn:
        conn.sendall(raw[:head_end])
        for byte in raw[head_end:]:
            readable, _, _ = select.select([conn], [], [], 0.5)
            if readable:
                break
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break
        status, headers, answer = _read_response(conn)
        statuses.append(status)
        if not headers.get("content-type", "").startswith("application/json"):
            errors.append(answer)
        else:
            json.loads(answer)["error"]


def test_slow_uploads_do_not_lock_out_ordinary_requests(fresh_weights):
    """30 clients sending a byte every 0.5 s: the 8 that one address may upload at once get
    408 after the 3 s limit, the others 429 at once, and every ordinary request gets 200."""
    from jkspnet import Colorizer
    from jkspnet.serve.app import create_app

    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    app = create_app(colorizer, queue_size=2, max_batch=1, upload_timeout_s=3.0)
    body, kind = _multipart(_png((40, 30)))
    with _Server(app) as server:
        statuses: list[int] = []
        errors: list[bytes] = []
        slow = [
            threading.Thread(target=_slow_upload, args=(server.port, statuses, errors))
            for _ in range(30)
        ]
        for thread in slow:
            thread.start()
        time.sleep(1.0)
        ordinary = [server.request(_post_raw(body, kind))[0] for _ in range(5)]
        for thread in slow:
            thread.join(timeout=60)
    assert ordinary == [200] * 5
    assert sorted(statuses) == [408] * 8 + [429] * 22 and errors == []
    assert app.state.counters["uploading"] == 0 and app.state.counters["in_flight"] == 0


def test_an_upload_named_in_latin1_or_with_a_newline_is_colorized(fresh_weights):
    from jkspnet import Colorizer
    from jkspnet.serve.app import create_app

    app = create_app(Colorizer.from_pretrained(fresh_weights, device="cpu"))
    body, kind = _multipart(_png((40, 30)))
    with _Server(app) as server:
        for name in (b"caf\xe9.png", b"two%0Alines.png", "café.png".encode()):
            named = body.replace(b'filename="a.png"', b'filename="' + name + b'"')
            status, headers, answer = server.request(_post_raw(named, kind))
            assert status == 200 and headers["content-type"] == "image/png", answer[:200]
            assert Image.open(io.BytesIO(answer)).size == (40, 30)


@pytest.mark.parametrize(
    "header",
    ["Content-Length: abc", "Content-Length: -5", "Content-Length: 3\r\nContent-Length: 4"],
)
def test_the_http_layers_own_errors_are_json(fresh_weights, header):
    from jkspnet import Colorizer
    from jkspnet.serve.app import create_app

    app = create_app(Colorizer.from_pretrained(fresh_weights, device="cpu"))
    raw = f"POST /api/colorize HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\nabc".encode()
    with _Server(app) as server:
        status, headers, body = server.request(raw)
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"].startswith("malformed HTTP request")


def test_admission_is_bounded_by_pixels_in_flight(fresh_weights, monkeypatch):
    from fastapi.testclient import TestClient

    from jkspnet import Colorizer
    from jkspnet.serve.app import create_app

    from .serve.test_app import SlowPredict, assert_error, fire

    colorizer = Colorizer.from_pretrained(fresh_weights, device="cpu")
    monkeypatch.setattr(colorizer, "predict_ab", SlowPredict(colorizer, delay=1.0))
    # room for 16 requests, but 64x48 photos: only one at a time within 4,000 pixels
    app = create_app(colorizer, queue_size=8, max_batch=8, max_pixels_in_flight=4000)
    photo = _png((64, 48))
    with TestClient(app, raise_server_exceptions=False) as client:
        responses = fire(client, photo, 4)
        codes = sorted(r.status_code for r in responses)
        assert codes.count(503) >= 1 and codes.count(200) >= 1 and set(codes) == {200, 503}
        assert "busy" in assert_error(next(r for r in responses if r.status_code == 503), 503)
        assert app.state.counters["pixels_in_flight"] == 0 == app.state.counters["in_flight"]
        small = _png((40, 30))  # 1,200 pixels: three fit at once
        assert sorted(r.status_code for r in fire(client, small, 3)) == [200] * 3


# --------------------------------------------------------------------------------- training
def _train_command(photos: Path, run: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "jkspnet", "train", "--data", str(photos), "--out", str(run)]
    return [*command, "--max-steps", "400", *TINY, "-q", *extra]


def _logged_steps(run: Path) -> list[int]:
    return [
        r["step"]
        for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
        if "loss" in r
    ]


def _training_past(photos: Path, run: Path, steps: int) -> subprocess.Popen:
    """A run (checkpoints every 200 steps) once it has logged ``steps`` steps."""
    command = _train_command(photos, run, "--checkpoint-every", "200")
    training = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    metrics = run / "metrics.jsonl"
    assert _wait_for(
        lambda: metrics.exists() and len(metrics.read_text().splitlines()) >= steps, 240
    )
    return training


@pytest.mark.slow  # over 60 s on a busy 2-core machine (processes of their own)
def test_sigterm_mid_training_writes_a_checkpoint_and_resume_loses_nothing(tmp_path, photos):
    run = tmp_path / "run"
    training = _training_past(photos, run, 3)
    training.send_signal(signal.SIGTERM)
    _, stderr = training.communicate(timeout=240)
    assert training.returncode == 143, stderr
    step = int(Path(os.readlink(run / "last")).name.split("_")[1])  # written on the signal
    assert 3 <= step < 200
    assert f"stopped at step {step}: SIGTERM received; continue with --resume {run}" in stderr
    assert stderr.strip().splitlines()[-1] == "interrupted (SIGTERM)"
    resume = [sys.executable, "-m", "jkspnet", "train", "--resume", str(run), "-q"]
    result = subprocess.run(
        [*resume, "--stop-at", str(step + 2)], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    assert f"resuming {run} at step {step}" in result.stderr
    assert _logged_steps(run) == list(range(1, step + 3))  # each step once, none lost


@pytest.mark.slow  # over 60 s on a busy 2-core machine (processes of their own)
def test_a_run_killed_before_its_first_checkpoint_resumes_afresh(tmp_path, photos):
    run = tmp_path / "run"
    training = _training_past(photos, run, 2)
    training.send_signal(signal.SIGKILL)
    training.communicate(timeout=240)
    assert not (run / "last").exists()
    resume = [sys.executable, "-m", "jkspnet", "train", "--resume", str(run), "-q"]
    result = subprocess.run(
        [*resume, "--stop-at", "3"], capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    assert f"note: {run} has no checkpoint yet; starting it afresh" in result.stderr
    assert _logged_steps(run) == [1, 2, 3]  # the killed attempt's records are gone
    assert Path(os.readlink(run / "last")).name == "step_0000003"
