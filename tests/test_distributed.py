"""Two CPU ranks (gloo), as torchrun would start them: same weights on both, and a resumable checkpoint."""

import json
import os
import socket

import pytest
import torch.multiprocessing as mp

from cunet.checkpoint import read_tensors
from cunet.train import LAST_CHECKPOINT, LOG_FILE, TrainConfig, train


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rank_main(rank: int, world: int, port: int, settings: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    train(TrainConfig(**settings), progress=False)


def run_ranks(settings: dict, world: int = 2) -> None:
    mp.spawn(rank_main, args=(world, free_port(), settings), nprocs=world, join=True)


@pytest.fixture
def settings(photo_folder, tmp_path) -> dict:
    return dict(data=str(photo_folder / "manifest.csv"), out_dir=str(tmp_path / "ddp"), width=4, crop=32,
                cache_short_side=40, batch_size=2, steps=4, warmup_steps=1, checkpoint_every=2, log_every=1,
                val_limit=2, precision="fp32", threads=1, device="cpu")


def records(settings: dict) -> list[dict]:
    with open(os.path.join(settings["out_dir"], LOG_FILE)) as handle:
        return [json.loads(line) for line in handle]


def test_two_gloo_ranks_agree_on_the_weights_and_resume(settings):
    run_ranks({**settings, "stop_after": 2})
    assert read_tensors(os.path.join(settings["out_dir"], LAST_CHECKPOINT))[1]["step"] == 2
    run_ranks(settings)
    assert read_tensors(os.path.join(settings["out_dir"], LAST_CHECKPOINT))[1]["step"] == 4
    log = records(settings)
    starts = [r for r in log if r["event"] == "start"]
    assert [r["step"] for r in starts] == [0, 2] and all(r["ranks"] == 2 for r in starts)
    agreement = [r for r in log if r["event"] == "ranks"]
    assert [r["weights_agree"] for r in agreement] == [True, True]
