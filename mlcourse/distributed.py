"""Training on several GPUs (or CPU processes) at once, as launched by ``torchrun``.

``torchrun --nproc_per_node=4 script.py`` starts the script four times, once per GPU; each copy
is a *process* with a *rank* (0 .. 3) and learns which it is from environment variables.
:func:`mlcourse.train.train` notices this and trains together with the others, the script
unchanged:

- every process draws the **same global batches** from the same seeded sampler and embeds only
  its own part of each (:func:`shard`), so N processes share the work of the network;
- the embeddings of all processes are put back together (:func:`gather`) before the loss, so
  the loss sees the whole global batch, as it would in one process: triplet mining, NT-Xent and
  the other losses with in-batch negatives find their positives and negatives among *all* the
  clips of the batch, not only among those of their own process;
- ``DistributedDataParallel`` (DDP) averages the gradients of the network's parameters over the
  processes, so the copies of the network stay equal.

Why the gradients come out right. Every process computes the same global loss ``L`` from the
same gathered embeddings. Going backwards, :func:`gather` adds up, over the processes, the
gradient of each process's copy of ``L`` with respect to this process's embeddings: N equal
copies, so N times ``dL/d(own embeddings)``. DDP then *averages* the parameter gradients over
the N processes, which divides by N again: the result is the sum over the processes of their
share of ``dL/d(parameters)``, which is exactly the gradient one process would get on the whole
global batch. The parameters of the loss itself (proxies, class weights) get the same full
gradient in every process, so they stay equal without DDP.

Batch normalisation computes its statistics over the batch a layer sees. On CUDA the layers
are turned into ``torch.nn.SyncBatchNorm``, which uses the statistics of the global batch. On
the CPU (the ``gloo`` backend) PyTorch has no synchronised batch normalisation, so each process
normalises with the statistics of its own part of the batch: training then differs a little
from one process (the running statistics are copied from process 0 after every epoch, so the
models stay equal).

Run alone (no ``torchrun``), every helper here does the trivial thing: one process of rank 0,
:func:`shard` and :func:`gather` return their input.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import nn

from .checks import named_device


def is_distributed():
    """Whether this process trains together with others (a process group of 2 or more)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank():
    """This process's number, 0 .. world_size() - 1 (0 when alone)."""
    return dist.get_rank() if is_distributed() else 0


def world_size():
    """How many processes train together (1 when alone)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main():
    """Whether this is process 0, the one that prints and writes checkpoints."""
    return rank() == 0


def launched_by_torchrun():
    """Whether torchrun started this process among several (it sets ``WORLD_SIZE``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup():
    """Join the other processes started by torchrun, once; does nothing when run alone.

    Reads torchrun's environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``). With CUDA, each process uses the GPU numbered by its
    ``LOCAL_RANK`` and the processes exchange GPU tensors through NCCL (and CPU tensors through
    gloo); without CUDA, they exchange CPU tensors through gloo.

    Returns:
        Whether this process now trains together with others (:func:`is_distributed`).
    """
    if dist.is_initialized() or not launched_by_torchrun():
        return is_distributed()
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    atexit.register(_leave)  # leave the group cleanly when the script ends
    return True


def _leave():
    if dist.is_initialized():
        dist.destroy_process_group()


def local_device(requested=None):
    """The device this process trains on: its own GPU (``cuda:LOCAL_RANK``), else the CPU.

    Args:
        requested: What the user asked for: None or a CUDA device gives this process's own
            GPU when there is CUDA; anything else gives the CPU (gloo moves no MPS tensors).
    """
    wants_gpu = requested is None or named_device(requested).type == "cuda"
    if wants_gpu and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def shard_bounds(n_rows, parts=None):
    """Where each process's part of ``n_rows`` rows starts and stops: a list of ``(start, stop)``.

    The rows are cut into ``parts`` (by default :func:`world_size`) contiguous parts in rank
    order, of sizes that differ by at most one (the first ``n_rows % parts`` get one row more).

    Raises:
        ValueError: If there are fewer rows than processes (a process would get nothing).
    """
    parts = world_size() if parts is None else int(parts)
    if n_rows < parts:
        raise ValueError(
            f"a batch of {n_rows} rows cannot be shared by {parts} processes: make the global batch at least {parts}"
        )
    size, extra = divmod(n_rows, parts)
    starts = [r * size + min(r, extra) for r in range(parts + 1)]
    return list(zip(starts[:-1], starts[1:]))


def shard(batch, part=None, parts=None):
    """This process's part of a global batch: a contiguous slice of its rows, in rank order.

    Every process holds the same global batch (of clip indices, features, ...); process ``r``
    keeps slice ``r`` of :func:`shard_bounds`. So ``gather(shard(batch))`` is ``batch`` again.

    Args:
        batch: Anything indexable by a slice along its first dimension (tensor, array).
        part, parts: Which part, of how many; by default this process's (its rank), of
            :func:`world_size`.
    """
    part = rank() if part is None else int(part)
    start, stop = shard_bounds(len(batch), parts)[part]
    return batch[start:stop]


def gather(tensor):
    """The rows of every process's ``tensor``, concatenated in rank order, gradients kept.

    Each process gives its own (B_r, ...) tensor (the B_r may differ by process); all get the
    same (sum of B_r, ...) tensor back. Going backwards, the gradient that reaches a process's
    rows is the sum over all processes of the gradient of their loss with respect to those
    rows: with the same loss in every process, N times the gradient of one.
    """
    if not is_distributed():
        return tensor
    return _GatherWithGradient.apply(tensor)


class _GatherWithGradient(torch.autograd.Function):
    """all_gather forwards; backwards, all_reduce (sum) the gradient and keep our own rows."""

    @staticmethod
    def forward(ctx, tensor):
        sizes = _row_counts(len(tensor), tensor.device)
        # all_gather moves tensors of one shape: pad every part to the longest, cut back after.
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        padded[: len(tensor)] = tensor
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        start = sum(sizes[: dist.get_rank()])
        ctx.rows = (start, start + len(tensor))
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, gradient):
        summed = gradient.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(summed)  # add up the gradients of every process's loss
        start, stop = ctx.rows
        return summed[start:stop]


def _row_counts(n_rows, device):
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([n_rows], device=device))
    return [int(count) for count in counts]


class GlobalBatchModel(nn.Module):
    """Wraps a network for :func:`mlcourse.train.train` when several processes train together.

    Called with a whole global batch (of features, views, ...), it runs the network on this
    process's part only (:func:`shard`), through DistributedDataParallel, and returns the
    outputs of the whole global batch (:func:`gather`). So a training step sees what it sees in
    one process: ``model(features[batch])`` gives the embeddings of every clip of ``batch``.
    A network with several inputs (or outputs) has each of them sharded (or gathered).

    On CUDA, batch normalisation layers become ``SyncBatchNorm`` (global batch statistics).
    Keep the wrapper itself, not only its outputs, until the backward pass: DDP averages the
    gradients from hooks that go away with it.

    Args:
        model: The network, already on ``device``.
        device: This process's device.
    """

    def __init__(self, model, device):
        super().__init__()
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.parallel = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    def forward(self, *inputs):
        outputs = self.parallel(*[shard(x) if torch.is_tensor(x) else x for x in inputs])
        if isinstance(outputs, (tuple, list)):
            return type(outputs)(gather(output) for output in outputs)
        return gather(outputs)


def broadcast_buffers(model):
    """Copy process 0's buffers (batch normalisation's running statistics) to every process."""
    if is_distributed():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


def barrier():
    """Wait until every process gets here (e.g. until process 0 has written a checkpoint)."""
    if is_distributed():
        dist.barrier()
