"""Distributed training: 2 CPU processes (torchrun, gloo) learn what one process learns.

The test starts this file under ``torchrun --nproc_per_node=2``; each process trains small
networks with the unchanged :func:`mlcourse.train.train` and saves what it got. The test then
trains the same networks in one process on the same global batches and compares: the loss of
every step, the network's parameters and the loss's own (proxies). The networks run in float64
and have no batch normalisation (on the CPU each process normalises with the statistics of its
own part of the batch, see :mod:`mlcourse.distributed`); one more run with batch normalisation
checks that the processes still end with the same model, and that only process 0 writes the
checkpoint.

On a machine with two GPUs or more (``pytest -m cuda``, as ``bench/gpu_check.py`` runs it), the
same runs go under torchrun with one process per GPU, NCCL between them and synchronised batch
normalisation, and every run, batch normalisation included, must give one GPU's losses and model.
On one GPU that test is skipped: the two CPU processes above are the check of the DDP code.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mlcourse import distributed
from mlcourse.data.samplers import ClassBalancedBatches, RandomBatches
from mlcourse.losses import InfoNCELoss, NTXentLoss, ProxyNCALoss, TripletMarginLoss
from mlcourse.models import EmbeddingNet
from mlcourse.selfsup import AugmentedViewsStep
from mlcourse.train import default_step, load_checkpoint, train

N_CLIPS, N_CLASSES, PROCESSES = 48, 6, 2
RUNS = ("triplet", "nt_xent", "proxy", "two_inputs", "batchnorm")


class SmallNet(nn.Module):
    """An embedding network without batch normalisation: (B, 8, 10) -> (B, 16) unit vectors."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(80, 32), nn.Tanh(), nn.Linear(32, 16))

    def forward(self, clips):
        return F.normalize(self.layers(clips), dim=1)


class TwoEncoders(nn.Module):
    """Two inputs, two outputs, as the cross-modal network: each is sharded and gathered."""

    def __init__(self):
        super().__init__()
        self.first, self.second = SmallNet(), SmallNet()

    def forward(self, clips, other_clips):
        return self.first(clips), self.second(other_clips)


def two_inputs_step(model, loss_fn, features, labels, batch):
    """A step of one's own, like ``CrossModalStep``: a clip against its time-reversed copy."""
    clips, reversed_clips = model(features[batch], features[batch].flip(2))
    return loss_fn(clips.float(), reversed_clips.float())


def add_noise(clips):
    """The augmentation of the NT-Xent run: random numbers drawn alike in every process."""
    return clips + 0.3 * torch.randn_like(clips)


def run(name, checkpoint=None, device="cpu"):
    """Train one small model; the same call in one process or in each of several.

    Global batches of 9 clips (triplet: 5 + 4 per process), 12 views (NT-Xent), 7 clips (two
    inputs: 4 + 3) and 8 clips (proxies, batch normalisation).
    """
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(N_CLIPS, 8, 10, generator=generator, dtype=torch.float64)
    labels = torch.arange(N_CLIPS) % N_CLASSES
    torch.manual_seed(0)
    model = SmallNet()
    step = default_step
    if name == "triplet":
        loss_fn = TripletMarginLoss(margin=0.2, mining="semihard")
        sampler = ClassBalancedBatches(labels, 3, 3, batches_per_epoch=3, seed=0)
    elif name == "nt_xent":
        loss_fn, step = NTXentLoss(temperature=0.5), AugmentedViewsStep(add_noise)
        sampler = RandomBatches(N_CLIPS, 6, batches_per_epoch=3, seed=0)
    elif name == "proxy":
        loss_fn = ProxyNCALoss(N_CLASSES, 16, softmax_scale=4.0)
        sampler = ClassBalancedBatches(labels, 4, 2, batches_per_epoch=3, seed=0)
    elif name == "two_inputs":
        model, loss_fn, step = TwoEncoders(), InfoNCELoss(temperature=0.5), two_inputs_step
        sampler = RandomBatches(N_CLIPS, 7, batches_per_epoch=3, seed=0)
    else:
        model = EmbeddingNet(embedding_dim=16, widths=(4, 8))
        loss_fn = TripletMarginLoss(margin=0.2)
        sampler = ClassBalancedBatches(labels, 4, 2, batches_per_epoch=3, seed=0)
    model = model.double()
    history = train(
        model,
        loss_fn,
        features,
        labels,
        sampler,
        epochs=2,
        lr=1e-2,
        device=device,
        seed=0,
        step=step,
        progress=False,
        checkpoint=checkpoint,
    )
    cpu = lambda state: {key: value.cpu() for key, value in state.items()}  # noqa: E731
    return {"losses": history.step_losses, "model": cpu(model.state_dict()), "loss": cpu(loss_fn.state_dict())}


def gradients_of_one_batch(wrap=lambda model: model):
    """The gradients of the network's parameters for one global batch of 9 clips.

    Adam hardly changes its steps when every gradient is scaled by the same factor, so equal
    parameters after training would not show a gradient twice too large: this compares the
    gradients themselves. ``wrap`` makes the network the processes share.
    """
    generator = torch.Generator().manual_seed(1)
    clips = torch.randn(9, 8, 10, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    torch.manual_seed(0)
    model = SmallNet().double()
    network = wrap(model)  # keep DDP alive until the backward pass is done
    TripletMarginLoss(margin=0.5)(network(clips), labels).backward()
    return {name: parameter.grad for name, parameter in model.named_parameters()}


def global_rows():
    """5 rows of 3 numbers: 3 rows for process 0 and 2 for process 1."""
    return torch.linspace(-1, 1, 15, dtype=torch.float64).reshape(5, 3)


def interacting_loss(rows):
    """A loss in which every row meets every other, as in-batch negatives do."""
    return torch.logsumexp(rows @ rows.T / 0.3, dim=1).mean() + rows.pow(3).sum()


def worker(folder, device, processes):
    """What each process does under torchrun: train every run, gather some rows, save it all."""
    assert distributed.setup() and distributed.world_size() == processes
    results = {
        name: run(name, checkpoint=folder / "batchnorm.pt" if name == "batchnorm" else None, device=device)
        for name in RUNS
    }
    own_rows = distributed.shard(global_rows()).clone().requires_grad_()
    gathered = distributed.gather(own_rows)
    interacting_loss(gathered).backward()
    results["gathered"], results["gradient"] = gathered.detach(), own_rows.grad
    results["network gradients"] = gradients_of_one_batch(
        lambda model: distributed.GlobalBatchModel(model, torch.device("cpu"))
    )
    torch.save(results, folder / f"rank{distributed.rank()}.pt")


def launch(folder, device, processes, **environment):
    """Run this file under torchrun with ``processes`` processes on ``device``; what each saved, by rank."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        __file__,
        str(folder),
        device,
        str(processes),
    ]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "OMP_NUM_THREADS": "1", **environment},
        cwd=Path(__file__).resolve().parents[1],
    )
    assert done.returncode == 0, f"torchrun failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return [torch.load(folder / f"rank{r}.pt", weights_only=True) for r in range(processes)]


@pytest.fixture(scope="module")
def processes(tmp_path_factory):
    """2 CPU processes (gloo): the folder they wrote to, and what each saved, by rank."""
    folder = tmp_path_factory.mktemp("distributed")
    return folder, launch(folder, "cpu", PROCESSES, CUDA_VISIBLE_DEVICES="")


@pytest.mark.parametrize("name", ["triplet", "nt_xent", "proxy", "two_inputs"])
def test_two_processes_learn_what_one_process_learns(processes, name):
    _, results = processes
    alone = run(name)
    for result in (r[name] for r in results):
        torch.testing.assert_close(torch.tensor(result["losses"]), torch.tensor(alone["losses"]), rtol=1e-5, atol=1e-6)
        for part in ("model", "loss"):
            assert result[part].keys() == alone[part].keys()
            for key, value in alone[part].items():
                torch.testing.assert_close(
                    result[part][key], value, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}, {part} {key}: {m}"
                )


def test_with_batch_norm_the_processes_end_equal_and_process_0_checkpoints(processes):
    folder, results = processes
    first, second = (r["batchnorm"] for r in results)
    assert first["losses"] == second["losses"]
    for key, value in first["model"].items():
        torch.testing.assert_close(second["model"][key], value, rtol=0, atol=0)
    restored = EmbeddingNet(embedding_dim=16, widths=(4, 8)).double()
    history, epoch = load_checkpoint(folder / "batchnorm.pt", restored)
    assert epoch == 2 and history.step_losses == first["losses"]
    for key, value in restored.state_dict().items():
        torch.testing.assert_close(value, first["model"][key], rtol=0, atol=0)


def test_gather_puts_the_batch_back_together_with_its_gradient(processes):
    _, results = processes
    rows = global_rows().requires_grad_()
    interacting_loss(rows).backward()
    for rank, result in enumerate(results):
        torch.testing.assert_close(result["gathered"], rows.detach(), rtol=0, atol=0)
        # Every process's copy of the loss sends its gradient: PROCESSES times one's.
        expected = PROCESSES * distributed.shard(rows.grad, rank, PROCESSES)
        torch.testing.assert_close(result["gradient"], expected)


def test_the_network_gets_the_gradient_of_one_process(processes):
    """The gather sums the gradient over the 2 processes, DDP averages it: one process's."""
    _, results = processes
    alone = gradients_of_one_batch()
    for result in results:
        for name, gradient in alone.items():
            torch.testing.assert_close(result["network gradients"][name], gradient, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_shards_partition_a_batch_in_order(parts):
    for n_rows in (parts, 9, 16, 17):
        batch = torch.arange(n_rows)
        pieces = [distributed.shard(batch, part, parts) for part in range(parts)]
        assert torch.equal(torch.cat(pieces), batch)
        assert max(map(len, pieces)) - min(map(len, pieces)) <= 1


def test_a_batch_smaller_than_the_processes_is_refused():
    with pytest.raises(ValueError, match="cannot be shared by 4 processes"):
        distributed.shard(torch.arange(3), 0, 4)


def test_alone_everything_is_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.setup() and not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    rows = torch.randn(5, 3)
    assert torch.equal(distributed.shard(rows), rows)
    assert distributed.gather(rows) is rows


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs or more (on one, the CPU processes check DDP)")
def test_one_process_per_gpu_learns_what_one_gpu_learns(tmp_path):
    """NCCL and SyncBatchNorm: every run, batch normalisation included, gives one GPU's results."""
    gpus = torch.cuda.device_count()
    results = launch(tmp_path, "cuda", gpus)
    for name in RUNS:
        alone = run(name, device="cuda")
        for rank, result in enumerate(r[name] for r in results):
            where = f"{name}, process {rank} of {gpus}"
            torch.testing.assert_close(
                torch.tensor(result["losses"]), torch.tensor(alone["losses"]), rtol=1e-5, atol=1e-6, msg=where
            )
            for part in ("model", "loss"):
                for key, value in alone[part].items():
                    torch.testing.assert_close(
                        result[part][key], value, rtol=1e-5, atol=1e-6, msg=lambda m: f"{where}, {part} {key}: {m}"
                    )


if __name__ == "__main__":
    worker(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
