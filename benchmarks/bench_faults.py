"""The standing fault benchmark: kill `jkspnet colorize`, `jkspnet colorize --ray` and
`jkspnet train` at random moments, with SIGKILL and with SIGTERM, and check what must hold.

Each trial starts the command as a user runs it (its own process, the bundled weights), sends
the signal at a moment drawn uniformly between 0.2 s and the length of an uninterrupted run
(measured first), and checks:

  - **after the kill**: the exit status (SIGTERM: 143; SIGKILL: killed); every output that
    stands under its name decodes whole; after SIGTERM no temporary is left (the handler
    removed it); for training, ``last`` loads and, after SIGTERM, holds the last step logged;
  - **after the rerun** (the same command, or ``train --resume RUN``, to the end): exit 0;
    every output there, decoding whole; no temporary (``.jkspnet-tmp.*``) anywhere under the
    output; for ``--ray``, the manifest's latest line of every output says done or skipped, its
    file exists, and no output was recorded done twice (exactly once); for training, each step
    logged once from 1 to the end, and the steps lost to the kill (logged before it, beyond the
    checkpoint it resumed from) at most one checkpoint interval.

A signal that arrives after the run has ended is not counted as a kill; the trial is drawn
again. That includes a process that exits 0: it had finished its work and was exiting (a
process is alive until the system has torn it down, and a signal then has no one to act on it).
Prints one row per command and signal, and writes the trials as JSON with --out.

    python benchmarks/bench_faults.py --kills 20 --out bench-faults.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import skimage.data
from PIL import Image

from jkspnet.media.files import is_temporary

COMMANDS = ("colorize", "ray", "train")
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}
TRAIN_STEPS = 40
CHECKPOINT_EVERY = 5
TINY = ["--crop-size", "16", "--batch-size", "4", "--val-every", "1000", "--log-every", "1"]


def make_photos(folder: Path, count: int, side: int) -> None:
    """``count`` greyscale PNGs of about ``side`` x 3/4 side from scikit-image's real photos."""
    sources = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea()]
    folder.mkdir(parents=True)
    for index in range(count):
        image = Image.fromarray(sources[index % len(sources)]).convert("L")
        image.resize((side, side * 3 // 4)).save(folder / f"photo_{index:02d}.png")


def make_training_photos(folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"]:
        image = Image.fromarray(getattr(skimage.data, name)())
        image.thumbnail((160, 160))
        image.save(folder / f"{name}.jpg", quality=95)


def temporaries(root: Path) -> list[str]:
    return [
        os.path.join(folder, name)
        for folder, dirs, files in os.walk(root)
        for name in [*files, *dirs]
        if is_temporary(name)
    ]


def undecodable(out: Path, expected: dict[str, tuple[int, int]]) -> list[str]:
    """Outputs standing under their names that do not decode whole at their size."""
    bad = []
    for path in sorted(out.glob("*.png")):
        try:
            with Image.open(path) as image:
                image.load()
                if image.size != expected[path.name]:
                    bad.append(path.name)
        except Exception:
            bad.append(path.name)
    return bad


def manifest_problems(out: Path, names: list[str]) -> list[str]:
    """What breaks the manifest's promises: a last state that is not done or skipped, a file
    recorded done that is not there, an output recorded done twice."""
    problems = []
    latest: dict[str, dict] = {}
    done: dict[str, int] = {}
    for line in (out / ".jkspnet-manifest.jsonl").read_text("utf-8").split("\n")[:-1]:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line torn by a kill: left alone, as the reader does
        if "status" in row:
            latest[row["output"]] = row
            if row["status"] == "done":
                done[row["output"]] = done.get(row["output"], 0) + 1
    for name in names:
        row = latest.get(name)
        if row is None or row["status"] not in ("done", "skipped"):
            problems.append(f"{name}: last state {row and row['status']}")
        elif not (out / name).is_file():
            problems.append(f"{name}: recorded {row['status']}, missing")
        if done.get(name, 0) > 1:
            problems.append(f"{name}: recorded done {done[name]} times")
    return problems


def status_ok(status: int, signum: int, output: Path) -> bool:
    """SIGKILL: killed. SIGTERM: 143, as the handler exits; or killed by it (-15) in the
    interpreter's first moments, before jkspnet has set its handler, when it had written
    nothing yet."""
    if signum == signal.SIGKILL:
        return status == -signal.SIGKILL
    return status == 143 or (status == -signal.SIGTERM and not output.exists())


def run_until(command: list[str], after: float | None, signum: int) -> tuple[int, bool, float]:
    """Run ``command``; send ``signum`` after ``after`` seconds (None: never). (exit status,
    whether it was still running when signalled, seconds)."""
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed = False
    if after is not None:
        try:
            process.wait(timeout=after)
        except subprocess.TimeoutExpired:
            process.send_signal(signum)
            killed = True
    _, stderr = process.communicate(timeout=600)
    if after is None and process.returncode:
        sys.stderr.write(stderr.decode(errors="replace")[-2000:])
    return process.returncode, killed, time.monotonic() - start


class Colorize:
    """`jkspnet colorize PHOTOS -o OUT` (with --ray: `--ray --workers 2`)."""

    def __init__(self, work: Path, ray: bool, count: int, side: int) -> None:
        self.photos = work / "photos"
        if not self.photos.exists():
            make_photos(self.photos, count, side)
        self.expected = {
            path.name: Image.open(path).size for path in sorted(self.photos.glob("*.png"))
        }
        self.ray = ray
        self.work = work

    def command(self, out: Path) -> list[str]:
        command = [sys.executable, "-m", "jkspnet", "colorize", str(self.photos), "-o", str(out)]
        return [*command, "-q", *(["--ray", "--workers", "2"] if self.ray else [])]

    def prepare(self, trial: int) -> Path:
        out = self.work / f"out-{'ray' if self.ray else 'plain'}-{trial}"
        shutil.rmtree(out, ignore_errors=True)
        return out

    def after_kill(self, out: Path, status: int, signum: int) -> dict:
        left = temporaries(out) if out.exists() else []
        return {
            "status_ok": status_ok(status, signum, out),
            "undecodable_after_kill": undecodable(out, self.expected) if out.exists() else [],
            "temporaries_after_kill": len(left),
        }

    def rerun(self, out: Path) -> list[str]:
        return self.command(out)

    def after_rerun(self, out: Path, status: int) -> dict:
        written = sorted(path.name for path in out.glob("*.png"))
        checks = {
            "rerun_status": status,
            "missing_after_rerun": sorted(set(self.expected) - set(written)),
            "undecodable_after_rerun": undecodable(out, self.expected),
            "temporaries_after_rerun": temporaries(out),
        }
        if self.ray:
            checks["manifest_problems"] = manifest_problems(out, sorted(self.expected))
        shutil.rmtree(out, ignore_errors=True)
        return checks


class Train:
    """`jkspnet train` of TRAIN_STEPS tiny steps, a checkpoint every CHECKPOINT_EVERY."""

    def __init__(self, work: Path) -> None:
        self.data = work / "train-photos"
        if not self.data.exists():
            make_training_photos(self.data)
        self.work = work
        self.lost = 0

    def command(self, run: Path) -> list[str]:
        command = [sys.executable, "-m", "jkspnet", "train", "--data", str(self.data)]
        steps = ["--max-steps", str(TRAIN_STEPS), "--checkpoint-every", str(CHECKPOINT_EVERY)]
        return [*command, "--out", str(run), *steps, *TINY, "-q"]

    def prepare(self, trial: int) -> Path:
        run = self.work / f"run-{trial}"
        shutil.rmtree(run, ignore_errors=True)
        return run

    @staticmethod
    def logged(run: Path) -> list[int]:
        path = run / "metrics.jsonl"
        if not path.exists():
            return []
        return [r["step"] for r in map(json.loads, path.read_text().splitlines()) if "loss" in r]

    @staticmethod
    def checkpoint(run: Path) -> int:
        last = run / "last"
        return int(Path(os.readlink(last)).name.split("_")[1]) if last.is_symlink() else 0

    def after_kill(self, run: Path, status: int, signum: int) -> dict:
        from jkspnet import Colorizer

        whole = True
        if (run / "last").exists():
            try:
                Colorizer.from_pretrained(run / "last", device="cpu")
            except Exception:
                whole = False
        logged = self.logged(run)
        saved = self.checkpoint(run)
        self.lost = (max(logged) if logged else 0) - saved
        sigterm_ok = signum != signal.SIGTERM or status != 143 or self.lost == 0
        return {
            "status_ok": status_ok(status, signum, run / "metrics.jsonl"),
            "checkpoint_whole": whole,
            "steps_lost": self.lost,
            "sigterm_saved_the_last_step": sigterm_ok,
            "temporaries_after_kill": len(temporaries(run)) if run.exists() else 0,
        }

    def rerun(self, run: Path) -> list[str]:
        if (run / "config.toml").exists():
            return [sys.executable, "-m", "jkspnet", "train", "--resume", str(run), "-q"]
        return self.command(run)  # killed before it wrote anything: start it again

    def after_rerun(self, run: Path, status: int) -> dict:
        logged = self.logged(run)
        checks = {
            "rerun_status": status,
            "steps_repeated_or_missing": logged != list(range(1, TRAIN_STEPS + 1)),
            "lost_beyond_one_interval": self.lost > CHECKPOINT_EVERY,
            "temporaries_after_rerun": temporaries(run),
        }
        shutil.rmtree(run, ignore_errors=True)
        return checks


def held(trial: dict) -> bool:
    """Whether every invariant held in a trial."""
    return (
        trial["status_ok"]
        and not trial.get("undecodable_after_kill")
        and (trial["signal"] != "SIGTERM" or trial["temporaries_after_kill"] == 0)
        and trial.get("checkpoint_whole", True)
        and trial.get("sigterm_saved_the_last_step", True)
        and trial["rerun_status"] == 0
        and not trial.get("missing_after_rerun")
        and not trial.get("undecodable_after_rerun")
        and not trial["temporaries_after_rerun"]
        and not trial.get("manifest_problems")
        and not trial.get("steps_repeated_or_missing")
        and not trial.get("lost_beyond_one_interval")
    )


def table(trials: list[dict], attempts: dict[tuple[str, str], int] | None = None) -> list[dict]:
    """One row per command and signal, in the order met; printed as a Markdown table."""
    rows = []
    for name, signal_name in dict.fromkeys((t["command"], t["signal"]) for t in trials):
        drawn = [t for t in trials if t["command"] == name and t["signal"] == signal_name]
        mine = [t for t in drawn if t["status"] != 0]  # logs from before exit 0 was redrawn
        row = {"command": name, "signal": signal_name, "kills": len(mine)}
        ended = len(drawn) - len(mine)
        if attempts is not None:
            ended += attempts[(name, signal_name)] - len(drawn)
        row["ended_before_the_signal"] = ended
        row.update(
            {
                "exit_status_ok": sum(t["status_ok"] for t in mine),
                "killed_before_the_handler": sum(t["status"] == -signal.SIGTERM for t in mine),
                "temporaries_left_by_the_kill": sum(t["temporaries_after_kill"] for t in mine),
                "half_written_outputs": sum(len(t.get("undecodable_after_kill", [])) for t in mine),
                "leftovers_after_rerun": sum(len(t["temporaries_after_rerun"]) for t in mine),
                "max_steps_lost": max((t.get("steps_lost", 0) for t in mine), default=0),
                "all_invariants_held": sum(t["held"] for t in mine),
            }
        )
        rows.append(row)
    columns = list(rows[0])
    print()
    print("| " + " | ".join(c.replace("_", " ") for c in columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="kills of each command and signal")
    parser.add_argument("--commands", default=",".join(COMMANDS), help="colorize,ray,train")
    parser.add_argument("--signals", default=",".join(SIGNALS), help="SIGKILL,SIGTERM")
    parser.add_argument("--photos", type=int, default=6, help="photos to colorize (6)")
    parser.add_argument("--side", type=int, default=640, help="their width in pixels (640)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="working folder (default: a temporary one)")
    parser.add_argument("--out", help="write the trials and the table as JSON here")
    parser.add_argument(
        "--table-from",
        nargs="+",
        metavar="LOG",
        help="print the table of the trials in these logs (this script's output) and stop",
    )
    args = parser.parse_args()
    if args.table_from:
        lines = [line for log in args.table_from for line in Path(log).read_text().splitlines()]
        table([json.loads(line) for line in lines if line.startswith("{")])
        return
    os.environ.setdefault("RAY_worker_niceness", "0")
    draw = random.Random(args.seed)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    trials: list[dict] = []
    attempts: dict[tuple[str, str], int] = {}
    for name in args.commands.split(","):
        if name == "train":
            subject: Train | Colorize = Train(work)
        else:
            subject = Colorize(work, name == "ray", args.photos, args.side)
        target = subject.prepare(0)
        status, _, full = run_until(subject.command(target), None, signal.SIGKILL)
        subject.after_rerun(target, status)  # an uninterrupted run: how long the kills may wait
        print(f"{name}: an uninterrupted run takes {full:.1f} s", flush=True)
        for signal_name in args.signals.split(","):
            signum = SIGNALS[signal_name]
            kills = 0
            attempt = 0
            while kills < args.kills:
                attempt += 1
                target = subject.prepare(attempt)
                moment = draw.uniform(0.2, full)
                status, killed, _ = run_until(subject.command(target), moment, signum)
                if not killed or status == 0:  # it ended first (or was exiting): no kill
                    subject.after_rerun(target, status)
                    continue
                kills += 1
                trial = {"command": name, "signal": signal_name, "at_s": round(moment, 2)}
                trial["status"] = status
                trial.update(subject.after_kill(target, status, signum))
                rerun_status, _, _ = run_until(subject.rerun(target), None, signum)
                trial.update(subject.after_rerun(target, rerun_status))
                trial["held"] = held(trial)
                trials.append(trial)
                print(json.dumps(trial), flush=True)
            attempts[(name, signal_name)] = attempt
    rows = table(trials, attempts)
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "trials": trials}, indent=2) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
