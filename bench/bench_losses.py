"""Benchmark our contrastive and triplet losses against pytorch-metric-learning's.

One command measures, in one run and on the same embeddings:

    .venv/bin/python bench/bench_losses.py [--quick] [--threads N]

Data: L2-normalised random float32 embeddings of dimension 128, in batches of P classes x K = 4
samples (the batches a P x K sampler gives), at batch sizes 64, 256 and 1024 (``--quick``: 64
and 256, fewer repeats). At each size it times forward and backward (from the embeddings to
their gradient) of:

* ``contrastive_loss`` (``pos_margin=0, neg_margin=1``) against pml's ``ContrastiveLoss``;
* ``triplet_margin_loss`` (``margin=0.2``) with each mining strategy, ``all``, ``semihard``,
  ``hard``, ``easy`` and ``batch_hard``, against pml's ``TripletMarginLoss`` fed by
  ``TripletMarginMiner(type_of_triplets=...)`` or ``BatchHardMiner``.

Both sides use the Euclidean distance without normalisation (pml's
``LpDistance(normalize_embeddings=False)``) and pml's default reducer, ``AvgNonZeroReducer``.
Each measurement checks that both give the same loss, the same gradient and, for triplets, the
same number of mined triplets. Results are printed and written to ``bench/results/losses.md``
and ``bench/results/losses.json``.
"""

from __future__ import annotations

import statistics
import time

import pytorch_metric_learning
import torch
from pytorch_metric_learning import distances as pml_distances
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from mlcourse.losses import contrastive_loss, pairwise_distances, triplet_margin_loss
from mlcourse.miners import mine_triplets

from common import command_line, describe_machine, format_header, make_parser, record_end_load, write_results

CODE_FILES = (
    "mlcourse/distances.py",
    "mlcourse/losses/_checks.py",
    "mlcourse/losses/pairs.py",
    "mlcourse/losses/triplets.py",
    "mlcourse/miners.py",
)
"""The files measured: their hash goes into the report, beside the commit."""

DIMENSION = 128
SAMPLES_PER_CLASS = 4
MARGIN = 0.2
POS_MARGIN, NEG_MARGIN = 0.0, 1.0
STRATEGIES = ("all", "semihard", "hard", "easy", "batch_hard")
SEED = 0

FULL = {"batch_sizes": (64, 256, 1024), "repeats": {64: 21, 256: 11, 1024: 5}}
QUICK = {"batch_sizes": (64, 256), "repeats": {64: 7, 256: 5}}


# --------------------------------------------------------------------------------------------
# The losses, ours and pml's, as functions of the embeddings
# --------------------------------------------------------------------------------------------


def make_batch(batch_size):
    """L2-normalised random embeddings, ``batch_size / 4`` classes of 4 samples each, shuffled."""
    generator = torch.Generator().manual_seed(SEED + batch_size)
    embeddings = torch.randn(batch_size, DIMENSION, generator=generator)
    embeddings = torch.nn.functional.normalize(embeddings, dim=1)
    labels = torch.arange(batch_size // SAMPLES_PER_CLASS).repeat_interleave(SAMPLES_PER_CLASS)
    return embeddings, labels[torch.randperm(batch_size, generator=generator)]


def pml_euclidean():
    return pml_distances.LpDistance(normalize_embeddings=False)


def pml_miner(strategy):
    """pml's miner for one of our strategies: ``BatchHardMiner`` or ``TripletMarginMiner``."""
    if strategy == "batch_hard":
        return pml_miners.BatchHardMiner(distance=pml_euclidean())
    return pml_miners.TripletMarginMiner(MARGIN, type_of_triplets=strategy, distance=pml_euclidean())


def loss_pair(task, labels):
    """``(ours, pml's)``: two functions from embeddings to the loss of ``task``."""
    if task == "contrastive":
        pml_loss = pml_losses.ContrastiveLoss(POS_MARGIN, NEG_MARGIN, distance=pml_euclidean())
        return (lambda e: contrastive_loss(e, labels, POS_MARGIN, NEG_MARGIN), lambda e: pml_loss(e, labels))
    strategy = task.removeprefix("triplet ")
    miner = pml_miner(strategy)
    pml_loss = pml_losses.TripletMarginLoss(MARGIN, distance=pml_euclidean())
    return (lambda e: triplet_margin_loss(e, labels, MARGIN, strategy), lambda e: pml_loss(e, labels, miner(e, labels)))


def count_triplets(task, embeddings, labels):
    """Triplets mined by us and by pml on this batch (None for the contrastive loss)."""
    if task == "contrastive":
        return None, None
    strategy = task.removeprefix("triplet ")
    ours = mine_triplets(pairwise_distances(embeddings), labels, MARGIN, strategy)
    return len(ours[0]), len(pml_miner(strategy)(embeddings, labels)[0])


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def forward_backward(loss_fn, embeddings):
    """Run ``loss_fn`` on a fresh copy of the embeddings and backward; return the wall time,
    the loss and the gradient."""
    leaf = embeddings.clone().requires_grad_(True)
    start = time.perf_counter()
    loss = loss_fn(leaf)
    loss.backward()
    seconds = time.perf_counter() - start
    return seconds, loss.detach(), leaf.grad


def measure(task, batch_size, repeats):
    """Time ours and pml's alternately (one warm-up each), and compare their results."""
    embeddings, labels = make_batch(batch_size)
    ours_fn, pml_fn = loss_pair(task, labels)
    _, ours_loss, ours_grad = forward_backward(ours_fn, embeddings)
    _, pml_loss, pml_grad = forward_backward(pml_fn, embeddings)
    ours_seconds, pml_seconds = [], []
    for _ in range(repeats):
        # Alternating spreads any slowdown of the machine over both sides alike.
        ours_seconds.append(forward_backward(ours_fn, embeddings)[0])
        pml_seconds.append(forward_backward(pml_fn, embeddings)[0])
    ours_triplets, pml_triplets = count_triplets(task, embeddings, labels)
    ours_median, pml_median = statistics.median(ours_seconds), statistics.median(pml_seconds)
    return {
        "batch_size": batch_size,
        "task": task,
        "ours_s": ours_median,
        "pml_s": pml_median,
        "pml_over_ours": pml_median / ours_median,
        "ours_times_s": ours_seconds,
        "pml_times_s": pml_seconds,
        "loss_ours": float(ours_loss),
        "loss_pml": float(pml_loss),
        "loss_abs_diff": abs(float(ours_loss) - float(pml_loss)),
        "grad_max_abs_diff": float((ours_grad - pml_grad).abs().max()),
        "grad_max_abs": float(pml_grad.abs().max()),
        "triplets_ours": ours_triplets,
        "triplets_pml": pml_triplets,
    }


def agrees(row):
    """Same loss and gradient (float32 rounding) and, for triplets, the same number mined."""
    same_loss = row["loss_abs_diff"] <= 1e-5 * max(1.0, abs(row["loss_pml"]))
    same_grad = row["grad_max_abs_diff"] <= 1e-5 * max(1e-3, row["grad_max_abs"])
    return same_loss and same_grad and row["triplets_ours"] == row["triplets_pml"]


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def format_row(row):
    """One markdown row: batch, loss, times, ratio, triplets, differences, verdict."""
    triplets = "—" if row["triplets_ours"] is None else f"{row['triplets_ours']:,}"
    cells = [
        str(row["batch_size"]),
        row["task"],
        f"{row['ours_s'] * 1e3:.2f} ({min(row['ours_times_s']) * 1e3:.2f})",
        f"{row['pml_s'] * 1e3:.2f} ({min(row['pml_times_s']) * 1e3:.2f})",
        f"{row['pml_over_ours']:.2f}",
        triplets,
        f"{row['loss_ours']:.6f}",
        f"{row['loss_abs_diff']:.1e}",
        f"{row['grad_max_abs_diff']:.1e}",
        "yes" if agrees(row) else "**no**",
    ]
    return "| " + " | ".join(cells) + " |"


def format_table(rows):
    lines = [
        "| batch | loss | ours (ms) | pml (ms) | pml / ours | triplets mined | loss value "
        "| abs. loss diff. | max abs. grad diff. | same result |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    return "\n".join(lines + [format_row(row) for row in rows])


def format_notes(report):
    repeats = ", ".join(f"{count} at B = {size}" for size, count in report["config"]["repeats"].items())
    return "\n".join(
        [
            f"- Embeddings: B x {DIMENSION} float32, standard normal then L2-normalised, "
            f"B / {SAMPLES_PER_CLASS} classes of {SAMPLES_PER_CLASS} (seed {SEED} + B).",
            f"- Contrastive: `pos_margin={POS_MARGIN}, neg_margin={NEG_MARGIN}`; triplet: "
            f"`margin={MARGIN}`; Euclidean distance, no normalisation inside the loss, on both sides.",
            "- Time: wall time of forward + backward, from the embeddings (a fresh leaf tensor) to "
            f"their gradient, mining included; median of {repeats} (fastest in brackets), ours and "
            "pml alternating after one warm-up call each; every time is in losses.json.",
            "- pml / ours above 1 means ours is faster. 'same result': losses within 1e-5 "
            "(relative), gradients within 1e-5 of the largest gradient entry, and the same number "
            "of mined triplets.",
        ]
    )


def format_report(report):
    """The whole markdown report."""
    return (
        "\n\n".join(
            [
                format_header(
                    "Contrastive and triplet losses benchmark", report["config"]["command"], report["machine"]
                ),
                "## Forward + backward time, ours against pytorch-metric-learning",
                format_table(report["results"]),
                "## How it was measured",
                format_notes(report),
            ]
        )
        + "\n"
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_arguments():
    """``--quick`` and ``--threads``."""
    parser = make_parser(__doc__, "batch sizes 64 and 256 only, fewer repeats (a smoke check)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for both sides (default: torch's own choice)"
    )
    return parser.parse_args()


def main():
    """Measure every loss at every batch size, print the table and write it to bench/results/."""
    arguments = parse_arguments()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    config = QUICK if arguments.quick else FULL
    machine = describe_machine(
        code_files=CODE_FILES, versions={"pytorch-metric-learning": pytorch_metric_learning.__version__}
    )
    tasks = ["contrastive"] + [f"triplet {strategy}" for strategy in STRATEGIES]
    rows = []
    for batch_size in config["batch_sizes"]:
        for task in tasks:
            rows.append(measure(task, batch_size, config["repeats"][batch_size]))
            print(format_row(rows[-1]), flush=True)
    record_end_load(machine)
    report = {
        "config": {
            "command": command_line(),
            "quick": arguments.quick,
            "dimension": DIMENSION,
            "samples_per_class": SAMPLES_PER_CLASS,
            "margin": MARGIN,
            "pos_margin": POS_MARGIN,
            "neg_margin": NEG_MARGIN,
            "seed": SEED,
            "repeats": config["repeats"],
        },
        "machine": machine,
        "results": rows,
    }
    markdown = format_report(report)
    print("\n" + markdown)
    write_results("losses", markdown, report)


if __name__ == "__main__":
    main()
