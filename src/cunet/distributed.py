"""One process or many: what `torchrun` tells a training process, and the few collective steps it needs.

Run under torchrun, the environment carries RANK, WORLD_SIZE and LOCAL_RANK; without them training is a
single process and nothing here touches torch.distributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates, draws progress bars and writes checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def ranks_from_environment() -> Ranks:
    """Ranks as torchrun sets them (a single process when they are absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))


def start(ranks: Ranks, device: torch.device) -> torch.device:
    """Join the process group (NCCL on GPUs, gloo on CPUs); returns this rank's device."""
    if not ranks.distributed:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop(ranks: Ranks) -> None:
    """Leave the process group together: a rank that tears gloo down while its peer is still talking
    to it can abort ("terminate called without an active exception")."""
    if ranks.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def prepare_model(model: nn.Module, ranks: Ranks, device: torch.device, find_unused: bool) -> nn.Module:
    """Wrap for DistributedDataParallel. On GPUs BatchNorm becomes SyncBatchNorm; PyTorch's
    SyncBatchNorm has no CPU kernel, so CPU ranks keep per-rank batch statistics while DDP
    broadcasts rank 0's running statistics each step (broadcast_buffers)."""
    if not ranks.distributed:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused)


def weights_agree(model: nn.Module, ranks: Ranks) -> bool:
    """Whether every rank holds the same weights (exact float64 checksums compared across ranks)."""
    if not ranks.distributed:
        return True
    parameters = list(model.parameters())
    checksum = torch.stack([p.detach().double().sum() for p in parameters] +
                           [p.detach().double().square().sum() for p in parameters]).to(parameters[0].device)
    gathered = [torch.zeros_like(checksum) for _ in range(ranks.world)]
    dist.all_gather(gathered, checksum)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])
