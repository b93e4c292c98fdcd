"""Training in many processes (``torchrun``): which process this is, and the one collective the
training loop needs beyond DistributedDataParallel's own."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Dist:
    """This process's place among ``world`` processes; rank 0 (``main``) writes the run's files."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group, once every rank is there."""
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()


def init_distributed(device: torch.device) -> tuple[Dist, torch.device]:
    """Join the process group that torchrun's environment (``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK``) describes, on this process's GPU where ``device`` is CUDA; alone otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return Dist(rank, world, local_rank), device


def any_rank(flag: bool, env: Dist, device: torch.device) -> bool:
    """True on every process if ``flag`` is true on any (a collective: every rank must call it)."""
    if env.world == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value)
    return value.item() > 0


def _digest(module: nn.Module) -> str:
    sha = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        sha.update(name.encode())
        sha.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return sha.hexdigest()


def weight_digests(module: nn.Module, env: Dist) -> list[str]:
    """Give every rank rank 0's buffers (BatchNorm statistics drift apart per rank), then the
    sha256 of each rank's weights, in rank order: equal when the ranks agree."""
    if env.world == 1:
        return [_digest(module)]
    for buffer in module.buffers():
        dist.broadcast(buffer, src=0)
    digests: list = [None] * env.world
    dist.all_gather_object(digests, _digest(module))
    return digests


__all__ = ["Dist", "any_rank", "init_distributed", "weight_digests"]
