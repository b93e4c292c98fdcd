"""The server's batcher: the network runs in a few threads, each grouping the photos that
arrive together into one forward pass."""

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from ..pipeline.colorizer import Colorizer


@dataclass
class _Item:
    network_input: "torch.Tensor"  # (1, size, size)
    temperature: float
    future: Future = field(default_factory=Future)


class Batcher:
    """Runs ``predict_ab`` in ``workers`` threads, grouping photos that arrive together.

    A thread takes the first waiting photo, then collects more for up to ``wait_s`` seconds (or
    until ``max_batch``), and runs one forward pass per group of equal temperature and size.
    """

    def __init__(
        self, colorizer: "Colorizer", workers: int = 1, max_batch: int = 8, wait_s: float = 0.005
    ) -> None:
        self.colorizer = colorizer
        self.max_batch = max_batch
        self.wait_s = wait_s
        self.batches_run = 0
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name=f"jkspnet-model-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, network_input: "torch.Tensor", temperature: float) -> Future:
        item = _Item(network_input, temperature)
        self._queue.put(item)
        return item.future

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def _collect(self, first: _Item) -> tuple[list[_Item], bool]:
        """The first photo and those that arrive within ``wait_s``; True if told to stop."""
        batch = [first]
        deadline = time.monotonic() + self.wait_s
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0) or 1e-6)
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _run(self) -> None:
        import torch

        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._collect(first)
            groups: dict[tuple[float, tuple[int, ...]], list[_Item]] = {}
            for item in batch:
                if not item.future.set_running_or_notify_cancel():
                    continue  # its request went away
                key = (item.temperature, tuple(item.network_input.shape))
                groups.setdefault(key, []).append(item)
            for (temperature, _), items in groups.items():
                try:
                    stacked = torch.stack([item.network_input for item in items])
                    ab = self.colorizer.predict_ab(stacked, temperature)
                    self.batches_run += 1
                    for item, one in zip(items, ab, strict=True):
                        item.future.set_result(one)
                except Exception as error:  # reported to each waiting request
                    for item in items:
                        if not item.future.done():
                            item.future.set_exception(error)
            if stop:
                return


__all__ = ["Batcher"]
