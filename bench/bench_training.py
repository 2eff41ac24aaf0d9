"""Training throughput of the course's embedding network, in clips per second.

One command measures how many clips per second ``mlcourse.train.train`` pushes through the
default ``EmbeddingNet`` with the triplet loss (online "all" mining), on the CPU and, when one
is present, on a CUDA GPU (bfloat16 autocast, with the peak GPU memory), and where the time goes:
the share spent waiting for batches, and the device's busy time per step (on CUDA measured on
the GPU with CUDA events; see ``mlcourse.train.StepClock``):

    .venv/bin/python bench/bench_training.py [--quick] [--device cpu|cuda|all]

Inputs are random (N, 128, 130) float16 log-mels with 10 classes, so no dataset is needed.
Each setting runs one warm-up epoch, then times 3 epochs on the CPU and 5 on CUDA (2 with
``--quick``); the figure is the median of their clips/s (the training loop's own per-epoch wall
times). Results are printed and written to ``bench/results/training.md`` and
``bench/results/training.json``.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch

from mlcourse.data.samplers import ClassBalancedBatches
from mlcourse.losses import TripletMarginLoss
from mlcourse.models import EmbeddingNet, count_parameters
from mlcourse.train import train

from common import command_line, describe_machine, format_header, make_parser, record_end_load, write_results

CODE_FILES = (
    "mlcourse/models.py",
    "mlcourse/train.py",
    "mlcourse/distances.py",
    "mlcourse/losses/_checks.py",
    "mlcourse/losses/pairs.py",
    "mlcourse/losses/triplets.py",
    "mlcourse/losses/proxies.py",
    "mlcourse/miners.py",
)
"""The files measured: their hash goes into the report, beside the commit."""
N_CLASSES = 10


def measure(device, batch_size, n_batches, epochs):
    """Clips per second and peak GPU memory of ``train`` at one batch size on one device."""
    rng = np.random.default_rng(0)
    features = rng.normal(-40, 15, size=(batch_size * 4, 128, 130)).astype(np.float16)
    labels = np.repeat(np.arange(N_CLASSES), len(features) // N_CLASSES + 1)[: len(features)]
    sampler = ClassBalancedBatches(labels, N_CLASSES, batch_size // N_CLASSES, batches_per_epoch=n_batches, seed=0)
    model = EmbeddingNet()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    history = train(
        model,
        TripletMarginLoss(margin=0.2, mining="all"),
        features,
        labels,
        sampler,
        epochs=epochs + 1,
        device=device,
        progress=False,
    )
    timed = history.clips_per_second[1:]  # the first epoch warms up
    wall = sum(history.epoch_seconds[1:])
    return {
        "device": device,
        "batch_size": sampler.batch_size,
        "batches_per_epoch": n_batches,
        "timed_epochs": epochs,
        "clips_per_second": statistics.median(timed),
        "clips_per_second_each_epoch": timed,
        "input_fraction": sum(history.epoch_input_seconds[1:]) / wall,
        "compute_fraction": sum(history.epoch_compute_seconds[1:]) / wall,
        "compute_ms_per_step": 1000 * sum(history.epoch_compute_seconds[1:]) / (n_batches * epochs),
        "peak_gpu_memory_mib": (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None),
        "parameters": count_parameters(model),
    }


def format_report(rows, machine, command):
    """The whole markdown report: one row per device and batch size, then how it was measured."""
    lines = [
        "| device | batch | clips/s (median) | clips/s per timed epoch | waiting for batches "
        "| device busy | busy ms / step | peak GPU memory (MiB) |",
        "|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        each = ", ".join(f"{value:.0f}" for value in row["clips_per_second_each_epoch"])
        memory = row["peak_gpu_memory_mib"]
        memory = "—" if memory is None else f"{memory:.0f}"
        lines.append(
            f"| {row['device']} | {row['batch_size']} | {row['clips_per_second']:.0f} "
            f"| {each} | {row['input_fraction']:.1%} | {row['compute_fraction']:.1%} "
            f"| {row['compute_ms_per_step']:.1f} | {memory} |"
        )
    notes = [
        f"- Model: `EmbeddingNet()` ({rows[0]['parameters']:,} parameters), triplet loss with "
        "online 'all' mining, Adam; bfloat16 autocast on CUDA.",
        f"- Random float16 log-mels (128 x 130), {N_CLASSES} classes, P x K batches of all "
        f"{N_CLASSES} classes; one warm-up epoch, then the median over the timed epochs of the "
        "training loop's own clips/s (its per-epoch wall time, GPU synchronised).",
        "- 'waiting for batches': the share of the timed epochs spent drawing batches and "
        "handing their indices to the device; 'device busy': the share the device spent on the "
        "steps, and 'busy ms / step' that time per step. On CUDA the busy time is measured on "
        "the GPU, between two CUDA events around each step; on the CPU it is the steps' wall "
        "time. The features live on the device, so a step reads its batch there.",
    ]
    return (
        "\n\n".join(
            [
                format_header("Training throughput", command, machine),
                "\n".join(lines),
                "## How it was measured",
                "\n".join(notes),
            ]
        )
        + "\n"
    )


def main():
    """Measure every device and batch size, print the table and write it to bench/results/."""
    parser = make_parser(__doc__, "fewer batches and epochs (a smoke check)")
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "all"], default="all", help="'all': the CPU, and CUDA when available"
    )
    args = parser.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    if not devices:
        parser.error("--device cuda: CUDA is not available here")
    machine = describe_machine(code_files=CODE_FILES)
    rows = []
    for device in devices:
        n_batches, epochs = (5, 2) if args.quick else ((10, 3) if device == "cpu" else (50, 5))
        for batch_size in (60, 120) if device == "cpu" else (120, 250, 500):
            rows.append(measure(device, batch_size, n_batches, epochs))
            print(f"{device} batch {rows[-1]['batch_size']}: {rows[-1]['clips_per_second']:.0f} clips/s")
    record_end_load(machine)
    command = command_line()
    markdown = format_report(rows, machine, command)
    print("\n" + markdown)
    write_results("training", markdown, {"command": command, "machine": machine, "rows": rows})


if __name__ == "__main__":
    main()
