"""Time the dataset build, and compare its clip features with the same features from librosa.

One command measures, in one run:

    .venv/bin/python bench/bench_dataset.py [--quick] [--workers N]

* **the build**: ``python -m mlcourse.data build --size S --workers N`` for the smoke and the
  workshop sizes (``--quick``: smoke only), each into an empty temporary ``MLCOURSE_DATA``
  folder, so the real cache (``data/cache/`` or ``$MLCOURSE_DATA``) is neither read nor touched.
  Reported: the command's wall time, clips per second, the time the build itself records in
  its manifest, the cache's size on disk and the peak RSS of the command with its worker pool
  (sampled every 0.2 s, as in ``bench_notebooks.py``). N is ``build_dataset``'s default (the
  CPU count, at most 4) unless given.
* **the features** the build computes per version: log-mel, chroma and the 60 summary features,
  ``mlcourse.data.features.compute_clip_features`` (torch, one batched STFT per version) against
  the same features from librosa (``librosa.stft`` once per version, then
  ``feature.melspectrogram``, ``power_to_db``, ``mfcc``, ``chroma_stft``, ``spectral_centroid``,
  ``spectral_flatness``, ``rms`` and ``onset_strength`` from that spectrogram: librosa's
  cheapest way to the same numbers), on the same rendered clips of the workshop size, both on
  one thread as in the build's workers. Both must give the same features (float32 rounding).
* **the import of an audio folder**: ``python -m mlcourse.data import FOLDER TAGS.csv`` of the
  labelled folder the tests generate (``tests/audio_collection.py``: 48 files per copy), at two
  sizes, into a temporary cache. Reported: wall time, clips per second and peak RSS, beside the
  size of the folder's audio once decoded (float32), which the import must not hold at once.

Results are printed and written to ``bench/results/dataset.md`` and ``dataset.json``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from mlcourse.data.build import SIZES, plan_versions, read_manifest, render_clips
from mlcourse.data.features import (
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    N_MFCC,
    SAMPLE_RATE,
    TOP_DB,
    compute_clip_features,
    cut_clips,
)

from common import (
    REPO_ROOT,
    PeakMemory,
    command_line,
    describe_machine,
    format_header,
    make_parser,
    record_end_load,
    write_results,
)

CODE_FILES = (
    "mlcourse/data/build.py",
    "mlcourse/data/features.py",
    "mlcourse/data/render.py",
    "mlcourse/data/collections.py",
    "mlcourse/data/dataset.py",
)
"""The files measured: their hash goes into the report, beside the commit."""
FULL = {"sizes": ("smoke", "workshop"), "feature_versions": 16, "feature_repeats": 5, "imports": [(2, 30.0), (6, 30.0)]}
QUICK = {"sizes": ("smoke",), "feature_versions": 6, "feature_repeats": 3, "imports": [(1, 10.0), (2, 10.0)]}
"""imports: (copies of the 48 label combinations, seconds per file) of each imported folder."""
FEATURE_SIZE = "workshop"
"""The features are compared on the first versions of this size's plan, in its clips per version."""
MB = 10**6


# --------------------------------------------------------------------------------------------
# The build
# --------------------------------------------------------------------------------------------


def default_workers():
    """The worker count ``build_dataset`` uses when given none: the CPU count, at most 4."""
    return min(4, os.cpu_count() or 1)


def folder_bytes(folder):
    """``(total, {file name: bytes})`` of the files in a folder."""
    sizes = {path.name: path.stat().st_size for path in sorted(Path(folder).iterdir()) if path.is_file()}
    return sum(sizes.values()), sizes


def time_build(size, workers):
    """Run the build command of one size into an empty temporary cache, measured.

    Returns:
        A dict: size, workers, clips, versions, wall seconds of the command, the build's own
        seconds (from its manifest), clips/s, the cache's bytes (total and per file), and the
        :class:`PeakMemory` figures of the command's process tree.
    """
    with tempfile.TemporaryDirectory(prefix="mlcourse-bench-data-") as folder:
        environment = dict(os.environ, MLCOURSE_DATA=folder)
        command = [sys.executable, "-m", "mlcourse.data", "build", "--size", size, "--workers", str(workers)]
        with PeakMemory() as memory:
            start = time.perf_counter()
            subprocess.run(command, cwd=REPO_ROOT, env=environment, check=True)
            seconds = time.perf_counter() - start
        manifest = read_manifest(Path(folder) / size)
        total_bytes, file_bytes = folder_bytes(Path(folder) / size)
    return {
        "size": size,
        "workers": workers,
        "clips": manifest["n_clips"],
        "versions": manifest["n_clips"] // SIZES[size]["clips_per_version"],
        "seconds": seconds,
        "build_seconds": manifest["build_seconds"],
        "clips_per_second": manifest["n_clips"] / seconds,
        "cache_bytes": total_bytes,
        "cache_file_bytes": file_bytes,
        **memory.as_dict(),
    }


def time_import(copies, seconds):
    """Import a generated audio folder into an empty temporary cache, measured.

    Returns:
        A dict: files, clips, seconds per file, the decoded audio's bytes (float32), the
        command's wall seconds, clips/s and the :class:`PeakMemory` figures of its process.
    """
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    from audio_collection import write_collection

    with tempfile.TemporaryDirectory(prefix="mlcourse-bench-import-") as folder:
        tags = write_collection(Path(folder) / "music", copies=copies, seconds=seconds)
        n_files = len(tags.read_text().splitlines()) - 1
        environment = dict(os.environ, MLCOURSE_DATA=str(Path(folder) / "cache"))
        command = [sys.executable, "-m", "mlcourse.data", "import", str(tags.parent), str(tags), "--name", "bench"]
        with PeakMemory() as memory:
            start = time.perf_counter()
            subprocess.run(command, cwd=REPO_ROOT, env=environment, check=True)
            wall = time.perf_counter() - start
        clips = read_manifest(Path(folder) / "cache" / "collections" / "bench")["n_clips"]
    return {
        "files": n_files,
        "clips": clips,
        "seconds_per_file": seconds,
        "decoded_audio_bytes": n_files * int(seconds * SAMPLE_RATE) * 4,
        "seconds": wall,
        "clips_per_second": clips / wall,
        **memory.as_dict(),
    }


# --------------------------------------------------------------------------------------------
# The features: ours against librosa
# --------------------------------------------------------------------------------------------


def render_versions(count):
    """Render the first ``count`` versions of ``FEATURE_SIZE``'s plan, as the build does.

    Returns:
        ``(batches, render_seconds)``: each version's (K, 66150) float32 clips, and the time
        of each ``render_clips`` call (rendering, cutting, and the features: the build's work
        for one version, on one thread).
    """
    per_version = SIZES[FEATURE_SIZE]["clips_per_version"]
    batches, seconds = [], []
    for version in plan_versions(FEATURE_SIZE).head(count).to_dict("records"):
        start = time.perf_counter()
        rendered = render_clips(version, per_version)
        seconds.append(time.perf_counter() - start)
        clips, _ = cut_clips(rendered["audio"], rendered["starts"][0], per_version)
        batches.append(clips)
    return batches, seconds


def librosa_clip_features(clips):
    """``compute_clip_features``'s outputs, computed with librosa from one STFT of the batch.

    The recipe is the one ``tests/data/test_features.py`` checks ours against; ``power_to_db``
    runs clip by clip, since its 80 dB floor is relative to the maximum of what it is given and
    ours is per clip.

    Returns:
        ``(logmel, summary, chroma)``: (K, 128, 130), (K, 60) and (K, 12, 130) float32 arrays.
    """
    magnitude = np.abs(librosa.stft(clips, n_fft=N_FFT, hop_length=HOP_LENGTH, center=True, pad_mode="constant"))
    power = magnitude**2
    mel = librosa.feature.melspectrogram(S=power, sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS)
    logmel = np.stack([librosa.power_to_db(clip_mel, top_db=TOP_DB) for clip_mel in mel])
    mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=N_MFCC)
    chroma = librosa.feature.chroma_stft(S=power, sr=SAMPLE_RATE, n_fft=N_FFT, tuning=0.0)
    tracks = [
        librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE, n_fft=N_FFT)[:, 0],
        librosa.feature.spectral_flatness(S=magnitude)[:, 0],
        librosa.feature.rms(S=magnitude, frame_length=N_FFT)[:, 0],
        librosa.onset.onset_strength(S=logmel, lag=1, max_size=1, aggregate=np.mean, center=False),
    ]
    columns = [mfcc.mean(axis=2), mfcc.std(axis=2), chroma.mean(axis=2)]
    for track in tracks:
        columns += [track.mean(axis=1, keepdims=True), track.std(axis=1, keepdims=True)]
    summary = np.concatenate(columns, axis=1)
    return logmel.astype(np.float32), summary.astype(np.float32), chroma.astype(np.float32)


def time_features(function, batches):
    """``(seconds, outputs)`` of ``function`` applied to every batch in turn."""
    start = time.perf_counter()
    outputs = [function(clips) for clips in batches]
    return time.perf_counter() - start, outputs


def differences(ours, theirs):
    """The largest gaps between our features and librosa's, over every batch.

    Returns:
        ``{"logmel_db", "chroma", "summary_scaled"}``: the largest absolute differences of the
        log-mels (dB) and chromas, and of the summary features each divided by the largest
        absolute value of its column (the columns range from flatness, near 0, to centroids in
        thousands of Hz).
    """
    stacked = [np.concatenate(parts) for parts in (*zip(*ours), *zip(*theirs))]
    logmel, summary, chroma, their_logmel, their_summary, their_chroma = stacked
    scale = np.maximum(np.abs(their_summary).max(axis=0), np.finfo(np.float32).tiny)
    return {
        "logmel_db": float(np.abs(logmel - their_logmel).max()),
        "chroma": float(np.abs(chroma - their_chroma).max()),
        "summary_scaled": float((np.abs(summary - their_summary) / scale).max()),
    }


def compare_features(n_versions, repeats):
    """Time our features and librosa's on the same clips, alternating, on one thread each.

    Returns:
        A dict: clips, versions, each side's times and clips/s (medians), ours / librosa for
        the medians and the best runs, the render time per version and the differences.
    """
    print(f"Rendering {n_versions} {FEATURE_SIZE} versions ...", flush=True)
    batches, render_seconds = render_versions(n_versions)
    n_clips = sum(len(clips) for clips in batches)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the build's workers
    try:
        with threadpool_limits(limits=1):  # numpy's BLAS, for librosa's matrix products
            compute_clip_features(batches[0])  # warm-ups: filterbanks, first calls
            librosa_clip_features(batches[0])
            ours_seconds, theirs_seconds = [], []
            for repeat in range(repeats):
                seconds, ours = time_features(compute_clip_features, batches)
                ours_seconds.append(seconds)
                seconds, theirs = time_features(librosa_clip_features, batches)
                theirs_seconds.append(seconds)
                print(
                    f"  repeat {repeat + 1}/{repeats}: ours {ours_seconds[-1]:.3f} s, "
                    f"librosa {theirs_seconds[-1]:.3f} s",
                    flush=True,
                )
    finally:
        torch.set_num_threads(threads)
    ours_median, theirs_median = statistics.median(ours_seconds), statistics.median(theirs_seconds)
    return {
        "size": FEATURE_SIZE,
        "versions": len(batches),
        "clips": n_clips,
        "threads": 1,
        "ours_s": ours_seconds,
        "librosa_s": theirs_seconds,
        "ours_clips_per_second": n_clips / ours_median,
        "librosa_clips_per_second": n_clips / theirs_median,
        "ours_over_librosa_time": ours_median / theirs_median,
        "ours_over_librosa_best_time": min(ours_seconds) / min(theirs_seconds),
        "render_clips_s_per_version": statistics.median(render_seconds),
        "features_share_of_render_clips": (ours_median / len(batches)) / statistics.median(render_seconds),
        "max_differences": differences(ours, theirs),
    }


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


def format_build_table(builds):
    """One row per size: clips, workers, times, throughput, cache size, peak memory."""
    lines = [
        "| size | versions | clips | workers | wall time (s) | clips/s | build's own time (s) "
        "| cache on disk (MB) | per clip (kB) | peak RSS, all processes (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in builds:
        lines.append(
            f"| {row['size']} | {row['versions']:,} | {row['clips']:,} | {row['workers']} "
            f"| {row['seconds']:.1f} | {row['clips_per_second']:.0f} | {row['build_seconds']:.1f} "
            f"| {row['cache_bytes'] / MB:,.1f} | {row['cache_bytes'] / row['clips'] / 1e3:.1f} "
            f"| {row['peak_rss_bytes'] / MB:,.0f} |"
        )
    return "\n".join(lines)


def format_import_table(imports):
    """One row per imported folder: its size, the decoded audio, time and peak memory."""
    lines = [
        "| files | clips | decoded audio (MB) | wall time (s) | clips/s | peak RSS (MB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in imports:
        lines.append(
            f"| {row['files']} x {row['seconds_per_file']:.0f} s | {row['clips']:,} "
            f"| {row['decoded_audio_bytes'] / MB:,.0f} | {row['seconds']:.1f} "
            f"| {row['clips_per_second']:.0f} | {row['peak_rss_bytes'] / MB:,.0f} |"
        )
    small, large = imports[0], imports[-1]
    audio_growth = (large["decoded_audio_bytes"] - small["decoded_audio_bytes"]) / MB
    rss_growth = (large["peak_rss_bytes"] - small["peak_rss_bytes"]) / MB
    lines += [
        "",
        f"From the smaller folder to the larger, the decoded audio grows by "
        f"{audio_growth:,.0f} MB and the peak RSS by {rss_growth:,.0f} MB: the import keeps "
        "each file's features, not the folder's audio.",
    ]
    return "\n".join(lines)


def format_feature_table(features):
    """Clips per second of both sides, our time over librosa's, and how far apart they are."""
    ours, theirs = features["ours_s"], features["librosa_s"]
    gaps = features["max_differences"]
    ratio = features["ours_over_librosa_time"]
    return "\n".join(
        [
            "| features | clips | ours: clips/s | librosa: clips/s | ours / librosa time: medians | best runs |",
            "|---|---:|---:|---:|---:|---:|",
            f"| log-mel + chroma + 60 summary | {features['clips']} "
            f"| {features['ours_clips_per_second']:,.0f} (best {features['clips'] / min(ours):,.0f}) "
            f"| {features['librosa_clips_per_second']:,.0f} (best {features['clips'] / min(theirs):,.0f}) "
            f"| {ratio:.2f} ({'ours faster' if ratio < 1 else 'librosa faster'}) "
            f"| {features['ours_over_librosa_best_time']:.2f} |",
            "",
            f"Same features: the log-mels differ by at most {gaps['logmel_db']:.1e} dB, the chromas "
            f"by {gaps['chroma']:.1e}, the summary features by {gaps['summary_scaled']:.1e} of their "
            "column's largest value.",
        ]
    )


def format_notes(report):
    """How each number was measured."""
    features = report["features"]
    return "\n".join(
        [
            "- Build: `python -m mlcourse.data build --size S --workers N`, timed from the start of "
            "the command to its end (Python's start and imports included), into an empty temporary "
            "`MLCOURSE_DATA`; the build's own time is the one it writes in its manifest (from the "
            "recipe check to the last file). Peak RSS: the command and its worker pool, summed every "
            "0.2 s (shared pages count once per process: an upper bound). 1 MB = 10^6 bytes.",
            f"- Features: the first {features['versions']} versions of the {features['size']} plan, "
            f"{features['clips']} clips, rendered once; `compute_clip_features` and librosa "
            "(one `librosa.stft` per version, then every feature from that spectrogram) each run "
            "once per version as in the build, alternating, on one thread (torch threads and "
            f"numpy's BLAS set to 1, as in the build's workers), after one warm-up call; median of "
            f"{len(features['ours_s'])} runs (best in brackets). Below 1, ours is faster.",
            f"- For scale: one version's `render_clips` (render, cut, features) took "
            f"{features['render_clips_s_per_version']:.2f} s on one thread; our features are "
            f"{features['features_share_of_render_clips']:.0%} of it, the rest is rendering.",
        ]
    )


def format_report(report):
    """The whole markdown report."""
    return (
        "\n\n".join(
            [
                format_header("Dataset build benchmark", report["config"]["command"], report["machine"]),
                "## The build",
                format_build_table(report["builds"]),
                "## Importing an audio folder",
                format_import_table(report["imports"]),
                "## Clip features: ours (torch) against librosa",
                format_feature_table(report["features"]),
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
    """``--quick``, ``--workers``."""
    parser = make_parser(__doc__, "the smoke size only, fewer versions and repeats for the features")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="the build's worker processes (default: as build_dataset, the CPU "
        f"count at most 4, here {default_workers()})",
    )
    return parser.parse_args()


def main():
    """Time the builds and the features, print the report and write it to bench/results/."""
    arguments = parse_arguments()
    config = dict(QUICK if arguments.quick else FULL)
    config.update(command=command_line(), quick=arguments.quick, workers=arguments.workers)
    machine = describe_machine(code_files=CODE_FILES, versions={"librosa": librosa.__version__})
    builds = []
    for size in config["sizes"]:
        print(f"Building the {size} dataset with {arguments.workers} worker(s) ...", flush=True)
        builds.append(time_build(size, arguments.workers))
        print(f"  {builds[-1]['clips']:,} clips in {builds[-1]['seconds']:.1f} s", flush=True)
    imports = []
    for copies, seconds in config["imports"]:
        print(f"Importing a generated folder of {48 * copies} files of {seconds:.0f} s ...", flush=True)
        imports.append(time_import(copies, seconds))
    features = compare_features(config["feature_versions"], config["feature_repeats"])
    record_end_load(machine)
    report = {"config": config, "machine": machine, "builds": builds, "imports": imports, "features": features}
    markdown = format_report(report)
    print("\n" + markdown)
    write_results("dataset", markdown, report)


if __name__ == "__main__":
    main()
