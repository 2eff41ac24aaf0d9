"""Benchmark our recall@K against faiss's exact search, and time our mean average precision.

One command measures, in one run and on the same embeddings:

    .venv/bin/python bench/bench_retrieval.py [--quick]

Data: 50,000 random float32 embeddings of dimension 256 in 1,000 classes of about 50 (each a
Gaussian blob around its own random centre, noisy enough that R@1 is far from 1); ``--quick``
uses 10,000 embeddings in 200 classes. Each embedding is a query searched among all the others.

* ``recall_at_k(ks=(1, 2, 4, 8))`` from ``mlcourse.metrics``, timed as a whole;
* faiss's exact search ``IndexFlatL2``: build the index, search each embedding's 9 nearest,
  drop the embedding itself, and compute R@K from the neighbours' labels, all timed;
* ``mean_average_precision`` from ``mlcourse.metrics``, timed (faiss has no peer for it).

faiss runs with as many OpenMP threads as torch uses (``faiss.omp_set_num_threads``), so both
sides get the same cores. Both R@K must agree, and so must the neighbours of a sample of queries
up to ties (neighbours at distances equal within float32 rounding may come in either order).
Results are printed and written to ``bench/results/retrieval.md`` and ``retrieval.json``.
"""

from __future__ import annotations

import statistics

import faiss
import numpy as np
import torch

from mlcourse.metrics import mean_average_precision, nearest_neighbors, recall_at_k

from common import command_line, describe_machine, format_header, make_parser, record_end_load, timed, write_results

CODE_FILES = ("mlcourse/metrics/neighbors.py", "mlcourse/metrics/retrieval.py")
"""The file measured: its hash goes into the report, beside the commit."""

KS = (1, 2, 4, 8)
DIMENSION = 256
ITEMS_PER_CLASS = 50
NOISE = 2.5
"""Spread of each class around its centre (centres are standard normal): R@1 is about 0.5."""
SEED = 0
TARGET_RATIO = 1.5
"""Our recall@K should take at most this many times faiss's time."""
N_CHECKED_QUERIES = 2000
"""Queries whose neighbours are compared one by one between us and faiss."""

FULL = {"n_items": 50_000, "recall_repeats": 3, "map_repeats": 1}
QUICK = {"n_items": 10_000, "recall_repeats": 3, "map_repeats": 3}


def make_embeddings(n_items):
    """(n_items, DIMENSION) float32 embeddings around n_items / 50 random class centres.

    Returns:
        ``(embeddings, labels)``: a float32 array and an (n_items,) int64 array.
    """
    rng = np.random.default_rng(SEED)
    n_classes = n_items // ITEMS_PER_CLASS
    centres = rng.standard_normal((n_classes, DIMENSION), dtype=np.float32)
    labels = rng.integers(0, n_classes, n_items)
    noise = rng.standard_normal((n_items, DIMENSION), dtype=np.float32)
    return centres[labels] + np.float32(NOISE) * noise, labels


# --------------------------------------------------------------------------------------------
# The two ways of computing R@K, each timed from embeddings to numbers
# --------------------------------------------------------------------------------------------


def faiss_neighbors(embeddings, k):
    """Each embedding's k nearest others by faiss's exact L2 search, nearest first.

    faiss returns the embedding itself among its k + 1 nearest (at distance 0, up to
    rounding); it is dropped, or the farthest neighbour when it is missing (duplicates).

    Returns:
        ``(squared_distances, indices)``: (N, k) float32 and (N, k) int64 arrays.
    """
    index = faiss.IndexFlatL2(embeddings.shape[1])
    index.add(embeddings)
    squared_distances, indices = index.search(embeddings, k + 1)
    is_self = indices == np.arange(len(indices))[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    kept = ~is_self
    return squared_distances[kept].reshape(-1, k), indices[kept].reshape(-1, k)


def recall_from_neighbors(neighbors, labels, ks):
    """R@K from (N, max(ks)) neighbour indices: how often a same-label item is within k."""
    matches = labels[neighbors] == labels[:, None]
    found_within = np.maximum.accumulate(matches, axis=1)
    return {k: float(found_within[:, k - 1].mean()) for k in ks}


def faiss_recall_at_k(embeddings, labels, ks):
    """R@K with faiss's exact search; also returns the neighbours, for the comparison."""
    squared_distances, neighbors = faiss_neighbors(embeddings, max(ks))
    return recall_from_neighbors(neighbors, labels, ks), (squared_distances, neighbors)


def time_recall(embeddings, labels, repeats):
    """Ours and faiss's R@K, alternating ``repeats`` times so both meet the same machine load.

    Returns:
        ``(ours_recalls, ours_seconds, faiss_recalls, faiss_seconds, faiss_neighbours)``.
    """
    ours_seconds, faiss_seconds = [], []
    for repeat in range(repeats):
        ours, seconds = timed(recall_at_k, embeddings, labels, ks=KS)
        ours_seconds.append(seconds)
        (peer, neighbours), seconds = timed(faiss_recall_at_k, embeddings, labels, KS)
        faiss_seconds.append(seconds)
        print(
            f"  repeat {repeat + 1}/{repeats}: ours {ours_seconds[-1]:.2f} s, faiss {faiss_seconds[-1]:.2f} s",
            flush=True,
        )
    return ours, ours_seconds, peer, faiss_seconds, neighbours


def compare_neighbors(embeddings, faiss_result, n_queries):
    """How the first ``n_queries`` queries' 8 neighbours compare between us and faiss.

    Where the index lists differ, the sets must differ only among neighbours at distances equal
    within float32 rounding (a near-tie may go either way).

    Returns:
        A dict: queries checked, queries with identical lists, and the largest relative
        difference between the two libraries' k-th distances where the lists differ.
    """
    faiss_squared, faiss_indices = (array[:n_queries] for array in faiss_result)
    distances, indices = nearest_neighbors(embeddings[:n_queries], embeddings, k=max(KS), exclude_self=True)
    identical = (indices == faiss_indices).all(axis=1)
    faiss_distances = np.sqrt(np.maximum(faiss_squared, 0))
    differing = ~identical
    gaps = np.abs(distances[differing] - faiss_distances[differing]) / faiss_distances[differing]
    return {
        "queries_checked": int(n_queries),
        "identical_neighbor_lists": int(identical.sum()),
        "largest_relative_distance_gap_where_lists_differ": float(gaps.max()) if gaps.size else 0.0,
        "largest_relative_distance_gap": float((np.abs(distances - faiss_distances) / faiss_distances).max()),
    }


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def format_seconds(seconds):
    """The median, with the fastest and slowest run when there were several."""
    text = f"{statistics.median(seconds):.2f}"
    if len(seconds) > 1:
        text += f" ({min(seconds):.2f}–{max(seconds):.2f})"
    return text


def format_timing_table(report):
    """Median wall times, and our time over faiss's for R@K (medians, and best runs)."""
    timings, comparison = report["timings"], report["comparison"]
    ratio = comparison["ours_over_faiss_time"]
    verdict = "within" if ratio <= TARGET_RATIO else "outside"
    return "\n".join(
        [
            "| task | mlcourse (s) | faiss IndexFlatL2 (s) | mlcourse / faiss: medians | best runs |",
            "|---|---:|---:|---:|---:|",
            f"| R@{{{', '.join(map(str, KS))}}} | {format_seconds(timings['ours_recall_s'])} | "
            f"{format_seconds(timings['faiss_recall_s'])} | {ratio:.2f} ({verdict} the "
            f"{TARGET_RATIO}x target) | {comparison['ours_over_faiss_best_time']:.2f} |",
            f"| mAP over the full ranking | {format_seconds(timings['ours_map_s'])} | — | — | — |",
        ]
    )


def format_recall_table(report):
    """R@K from both libraries, side by side."""
    ours, peer = report["recall"]["ours"], report["recall"]["faiss"]
    lines = ["| k | R@k, mlcourse | R@k, faiss |", "|---:|---:|---:|"]
    lines += [f"| {k} | {ours[str(k)]:.4f} | {peer[str(k)]:.4f} |" for k in KS]
    lines.append(f"\nmAP (mlcourse): {report['map']:.4f}")
    return "\n".join(lines)


def format_notes(report):
    """How each number was measured, and how the two libraries' results compare."""
    config, check = report["config"], report["comparison"]["neighbors"]
    same = "the same" if report["comparison"]["same_recall"] else "DIFFERENT"
    return "\n".join(
        [
            f"- Data: {config['n_items']:,} x {DIMENSION} float32 embeddings in "
            f"{config['n_items'] // ITEMS_PER_CLASS:,} classes (centres standard normal, noise "
            f"{NOISE}, seed {SEED}); every embedding is a query searched among all the others.",
            f"- Times are wall times from embeddings to R@K, median of {config['recall_repeats']} "
            f"runs of each, ours and faiss alternating (range in brackets); faiss's time includes "
            "building the index, the k = 9 search, dropping each query itself and R@K from labels.",
            f"- mAP: `mean_average_precision` on the same embeddings, median of {config['map_repeats']} run(s).",
            f"- R@K: {same} values from both libraries. {describe_neighbor_check(check)}",
        ]
    )


def describe_neighbor_check(check):
    """A sentence on how the sampled queries' neighbour lists compare."""
    text = (
        f"Neighbours of the first {check['queries_checked']:,} queries: "
        f"{check['identical_neighbor_lists']:,} identical lists of {max(KS)}; the distances "
        f"agree within {check['largest_relative_distance_gap']:.1e} (relative)"
    )
    if check["identical_neighbor_lists"] < check["queries_checked"]:
        text += (
            ", and where the lists differ, within "
            f"{check['largest_relative_distance_gap_where_lists_differ']:.1e}: near-ties "
            "that float32 rounding orders differently"
        )
    return text + "."


def format_report(report):
    """The whole markdown report."""
    machine = report["machine"]
    faiss_threads = f"faiss uses {machine['faiss_threads']} OpenMP threads (set to torch's)"
    return (
        "\n\n".join(
            [
                format_header(
                    "Retrieval metrics benchmark", report["config"]["command"], machine, notes=[faiss_threads]
                ),
                "## Time",
                format_timing_table(report),
                "## Results",
                format_recall_table(report),
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
    """``--quick``."""
    parser = make_parser(__doc__, "10,000 embeddings instead of 50,000 (a smoke check)")
    return parser.parse_args()


def main():
    """Time both R@K and our mAP, check they agree, print and write the report."""
    arguments = parse_arguments()
    config = dict(QUICK if arguments.quick else FULL)
    config["command"] = command_line()
    # Same cores for both libraries: faiss would otherwise pick its own thread count.
    faiss.omp_set_num_threads(torch.get_num_threads())
    machine = describe_machine(
        code_files=CODE_FILES,
        versions={"faiss": faiss.__version__},
        extra={"faiss_threads": faiss.omp_get_max_threads()},
    )
    embeddings, labels = make_embeddings(config["n_items"])
    print(f"R@K on {len(embeddings):,} x {DIMENSION} embeddings ...", flush=True)
    ours, ours_seconds, peer, faiss_seconds, neighbours = time_recall(embeddings, labels, config["recall_repeats"])
    print("mAP ...", flush=True)
    map_runs = [timed(mean_average_precision, embeddings, labels) for _ in range(config["map_repeats"])]
    report = {
        "config": config,
        "machine": machine,
        "recall": {"ours": {str(k): v for k, v in ours.items()}, "faiss": {str(k): v for k, v in peer.items()}},
        "map": map_runs[0][0],
        "timings": {
            "ours_recall_s": ours_seconds,
            "faiss_recall_s": faiss_seconds,
            "ours_map_s": [seconds for _, seconds in map_runs],
        },
        "comparison": {
            "ours_over_faiss_time": statistics.median(ours_seconds) / statistics.median(faiss_seconds),
            "ours_over_faiss_best_time": min(ours_seconds) / min(faiss_seconds),
            "same_recall": ours == peer,
            "neighbors": compare_neighbors(embeddings, neighbours, N_CHECKED_QUERIES),
        },
    }
    record_end_load(machine)
    markdown = format_report(report)
    print("\n" + markdown)
    write_results("retrieval", markdown, report)


if __name__ == "__main__":
    main()
