"""Clip features: log-mel spectrograms, chroma and aligned piano rolls.

Every clip of the course is 3 seconds of mono audio at 22,050 Hz. Its log-mel spectrogram has
128 bands and a hop of 512 samples (130 frames, centred frames as in librosa); its chroma has
one row per pitch class (C, C#, ..., B) on the same 130 frames; its piano roll has one row per
MIDI pitch on the same frames, so row ``p`` at frame ``t`` says whether pitch ``p`` sounds at
the centre of log-mel frame ``t``.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

from functools import lru_cache

import numpy as np
import torch

SAMPLE_RATE = 22050
CLIP_SECONDS = 3.0
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)
N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_FRAMES = 1 + CLIP_SAMPLES // HOP_LENGTH
N_PITCHES = 128
# Pitch-class names as musicians spell keys: the chroma rows, and the tonic of every piece.
PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
N_CHROMA = len(PITCH_CLASSES)
TOP_DB = 80.0
AMIN = 1e-10


@lru_cache(maxsize=None)
def mel_filterbank() -> np.ndarray:
    """The mel filterbank (Slaney-style, as librosa's default).

    Returns:
        (N_MELS, N_FFT // 2 + 1) float32 array.
    """
    import librosa

    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


def power_spectrogram(clips: np.ndarray) -> torch.Tensor:
    """Power spectrogram of a batch of clips: a centred, zero-padded Hann-window STFT.

    Args:
        clips: (N, samples) or (samples,) float array of audio at 22,050 Hz.

    Returns:
        (N, 1025, frames) float32 tensor |STFT|^2 (n_fft 2048, hop 512).
    """
    clips = np.asarray(clips, dtype=np.float32)
    if clips.ndim not in (1, 2):
        raise ValueError(f"clips must be (samples,) or (N, samples), got shape {clips.shape}")
    spectrum = torch.stft(
        torch.from_numpy(np.atleast_2d(clips)),
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        window=torch.hann_window(N_FFT),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spectrum.real**2 + spectrum.imag**2


def log_mel_from_power(power: torch.Tensor) -> torch.Tensor:
    """(N, 1025, frames) power spectrogram -> (N, 128, frames) log-mel in dB (80 dB floor per clip)."""
    mel = torch.matmul(torch.from_numpy(mel_filterbank()), power)
    db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
    peak = db.amax(dim=(1, 2), keepdim=True)
    return torch.maximum(db, peak - TOP_DB)


def compute_log_mel(clips: np.ndarray) -> np.ndarray:
    """Log-mel spectrograms of a batch of clips, computed in one batch with torch.

    Equal (to float32 rounding) to ``librosa.power_to_db(librosa.feature.melspectrogram(y=clip,
    sr=22050, n_fft=2048, hop_length=512, n_mels=128))`` for each clip: power spectrum of a
    centred, zero-padded Hann-window STFT, mel filterbank, then decibels relative to 1.0,
    floored at 80 dB below each clip's maximum.

    Args:
        clips: (N, samples) or (samples,) float array of audio at 22,050 Hz.

    Returns:
        (N, 128, frames) float32 array in dB (frames = 130 for 3-second clips); no batch
        axis when the input had none.
    """
    db = log_mel_from_power(power_spectrogram(clips)).numpy()
    return db if np.ndim(clips) == 2 else db[0]


def frame_times(n_frames: int = N_FRAMES) -> np.ndarray:
    """Centre time of each log-mel frame of a clip, in seconds from the clip's start."""
    return np.arange(n_frames) * HOP_LENGTH / SAMPLE_RATE


def compute_piano_roll(notes: np.ndarray, clip_start: float, n_frames: int = N_FRAMES) -> np.ndarray:
    """The piano roll of one clip, on the log-mel frame grid.

    Args:
        notes: (M, 3) float array of (onset s, offset s, MIDI pitch) as rendered.
        clip_start: the clip's start in the rendering, in seconds.
        n_frames: number of frames (130 for a 3-second clip).

    Returns:
        (128, n_frames) bool array; [p, t] is True when pitch p sounds at frame t's centre.
    """
    times = clip_start + frame_times(n_frames)
    roll = np.zeros((N_PITCHES, n_frames), dtype=bool)
    for onset, offset, pitch in notes:
        sounding = (times >= onset) & (times < offset)
        roll[int(pitch)] |= sounding
    return roll


def cut_clips(audio: np.ndarray, start: float, n_clips: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut consecutive, non-overlapping 3-second clips from a rendering.

    Clip k covers [start + 3k, start + 3(k + 1)) seconds, so clip k + 1 follows clip k
    (the adjacency that self-supervised methods learn from). Only whole clips are kept.

    Args:
        audio: (samples,) float array at 22,050 Hz.
        start: where the first clip starts, in seconds.
        n_clips: the most clips to cut.

    Returns:
        clips: (K, 66150) float32 array, K <= n_clips;
        starts: (K,) clip start times in seconds.
    """
    first = int(round(start * SAMPLE_RATE))
    available = max(0, (len(audio) - first) // CLIP_SAMPLES)
    count = min(n_clips, available)
    clips = (
        np.stack([audio[first + k * CLIP_SAMPLES : first + (k + 1) * CLIP_SAMPLES] for k in range(count)])
        if count
        else np.zeros((0, CLIP_SAMPLES), np.float32)
    )
    starts = (first + np.arange(count) * CLIP_SAMPLES) / SAMPLE_RATE
    return clips.astype(np.float32), starts


def pool_log_mel(logmel: np.ndarray) -> np.ndarray:
    """Summarise each clip by the mean and standard deviation of every band over time.

    Args:
        logmel: (N, 128, frames) log-mel spectrograms.

    Returns:
        (N, 256) float32: 128 band means, then 128 band standard deviations.
    """
    logmel = np.asarray(logmel, dtype=np.float32)
    return np.concatenate([logmel.mean(axis=2), logmel.std(axis=2)], axis=1)


def pooled_features(train_logmel, *others):
    """Pooled log-mel vectors of every split, standardised with the training split's statistics.

    Each band's mean and standard deviation over time (:func:`pool_log_mel`);
    then each of the 256 columns has the training clips' mean subtracted and is divided by their
    standard deviation. The held-out splits use the same training statistics, as a learner who has
    not seen them must.

    Args:
        train_logmel: (N, 128, T) log-mel spectrograms of the training clips.
        *others: Further (M, 128, T) arrays (validation, test).

    Returns:
        A list of float32 arrays, (N, 256) for the training clips first, then one per other split.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> train_x, test_x = pooled_features(rng.normal(size=(5, 128, 4)), rng.normal(size=(3, 128, 4)))
        >>> train_x.shape, bool(np.allclose(train_x.mean(axis=0), 0, atol=1e-5))
        ((5, 256), True)

    Taught in notebooks/10_reality_check.ipynb
    """
    pooled = [pool_log_mel(logmel) for logmel in (train_logmel, *others)]
    mean = pooled[0].mean(axis=0, dtype=np.float64)
    std = pooled[0].std(axis=0, dtype=np.float64)
    std = np.where(std > 0, std, 1.0)  # a constant column stays 0 rather than becoming NaN
    return [((x - mean) / std).astype(np.float32) for x in pooled]


N_MFCC = 20
SUMMARY_NAMES = (
    [f"mfcc{i}_mean" for i in range(N_MFCC)]
    + [f"mfcc{i}_std" for i in range(N_MFCC)]
    + [f"chroma_{pc}_mean" for pc in PITCH_CLASSES]
    + [f"{name}_{stat}" for name in ("centroid", "flatness", "rms", "onset_strength") for stat in ("mean", "std")]
)


@lru_cache(maxsize=None)
def _chroma_filterbank() -> np.ndarray:
    """Librosa's chroma filterbank: (12, 1025) float32, rows C, C#, ..., B, tuned to A = 440 Hz."""
    import librosa

    return librosa.filters.chroma(sr=SAMPLE_RATE, n_fft=N_FFT).astype(np.float32)


def chroma_from_power(power: torch.Tensor) -> torch.Tensor:
    """Chroma of clips: how much energy each pitch class has in each frame.

    The chroma filterbank gathers the energy of the power spectrogram's bins into the 12 pitch
    classes, C first, octaves folded together; each frame is then scaled so that its strongest
    pitch class is 1. This is ``librosa.feature.chroma_stft(S=power, sr=22050, n_fft=2048,
    tuning=0.0)``: standard tuning (A = 440 Hz), as the course's renderings are, rather than a
    tuning estimated from each clip. As in librosa, a frame whose largest value is below the
    smallest positive float (digital silence) is left as it is, all zeros.

    Args:
        power: (N, 1025, frames) power spectrogram (see :func:`power_spectrogram`).

    Returns:
        (N, 12, frames) float32 tensor with values in [0, 1], rows named by ``PITCH_CLASSES``.
    """
    chroma = torch.matmul(torch.from_numpy(_chroma_filterbank()), power)
    peak = chroma.amax(dim=1, keepdim=True)
    silent = peak < torch.finfo(chroma.dtype).tiny
    return chroma / torch.where(silent, torch.ones_like(peak), peak)


def mfcc(logmel, n_mfcc=N_MFCC):
    """MFCCs of a dB log-mel spectrogram: the orthonormal DCT-II over the mel bands.

    The same as ``librosa.feature.mfcc(S=logmel, n_mfcc=n_mfcc)``. The DCT summarises the
    shape of each frame's spectrum (its envelope: the timbre) in a few numbers.

    Args:
        logmel: (..., bands, frames) log-mel spectrogram(s) in dB, a numpy array or a tensor.
        n_mfcc: Coefficients to keep, at most the number of bands.

    Returns:
        (..., n_mfcc, frames) float32, a tensor for a tensor, else a numpy array.

    Raises:
        ValueError: If ``n_mfcc`` is not in [1, bands].

    Taught in notebooks/09_applications.ipynb
    """
    values = logmel if torch.is_tensor(logmel) else torch.from_numpy(np.asarray(logmel, dtype=np.float32))
    if isinstance(n_mfcc, bool) or not isinstance(n_mfcc, (int, np.integer)) or n_mfcc < 1:
        raise ValueError(f"n_mfcc must be a positive integer, got {n_mfcc!r}")
    if values.ndim < 2 or n_mfcc > values.shape[-2]:
        raise ValueError(
            f"n_mfcc={n_mfcc} needs a (..., bands, frames) spectrogram with at least that many "
            f"bands, got shape {tuple(values.shape)}"
        )
    coefficients = torch.matmul(_dct_matrix(values.shape[-2], int(n_mfcc)), values.float())
    return coefficients if torch.is_tensor(logmel) else coefficients.numpy()


@lru_cache(maxsize=8)
def _dct_matrix(n_bands, n_mfcc):
    """(n_mfcc, n_bands) float32 rows of the orthonormal DCT-II."""
    from scipy.fft import dct

    return torch.from_numpy(dct(np.eye(n_bands), type=2, norm="ortho", axis=0)[:n_mfcc].astype(np.float32))


def summary_from_power(power: torch.Tensor, logmel: torch.Tensor) -> torch.Tensor:
    """Time-averaged summary features of clips, as the classic MIR feature sets.

    Per clip: the mean and standard deviation over time of 20 MFCCs (a DCT of the log-mel, as
    ``librosa.feature.mfcc``), the mean chroma (:func:`chroma_from_power`), and the mean and
    standard deviation of the spectral centroid (Hz), spectral flatness, RMS energy and onset
    strength (mean rise of the log-mel bands, dB).

    Args:
        power: (N, 1025, frames) power spectrogram (see :func:`power_spectrogram`).
        logmel: (N, 128, frames) log-mel in dB of the same clips.

    Returns:
        (N, 60) float32 tensor, columns named by ``SUMMARY_NAMES``.
    """
    coefficients = mfcc(logmel)
    chroma = chroma_from_power(power)
    magnitude = power.sqrt()
    hertz = torch.linspace(0, SAMPLE_RATE / 2, magnitude.shape[1])
    centroid = (hertz[:, None] * magnitude).sum(1) / torch.clamp(magnitude.sum(1), min=1e-10)
    floored = torch.clamp(power, min=AMIN)
    flatness = torch.exp(torch.log(floored).mean(1)) / floored.mean(1)
    edges = power.clone()
    edges[:, [0, -1]] *= 0.5  # the DC and Nyquist bins count once, as in librosa.feature.rms
    rms = torch.sqrt(2 * edges.sum(1) / N_FFT**2)
    rise = torch.clamp(logmel[:, :, 1:] - logmel[:, :, :-1], min=0).mean(1)
    onset = torch.nn.functional.pad(rise, (1, 0))  # the first frame has no predecessor: 0, as in librosa
    columns = [coefficients.mean(2), coefficients.std(2, correction=0), chroma.mean(2)]
    for track in (centroid, flatness, rms, onset):
        columns += [track.mean(1, keepdim=True), track.std(1, correction=0, keepdim=True)]
    return torch.cat(columns, dim=1)


def compute_clip_features(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log-mel spectrograms, summary features and chroma of a batch of clips, from one STFT.

    Args:
        clips: (N, samples) float array of audio at 22,050 Hz.

    Returns:
        logmel: (N, 128, frames) float32 dB; summary: (N, 60) float32 (see
        :func:`summary_from_power`); chroma: (N, 12, frames) float32 (see :func:`chroma_from_power`).
    """
    power = power_spectrogram(np.atleast_2d(clips))
    logmel = log_mel_from_power(power)
    return logmel.numpy(), summary_from_power(power, logmel).numpy(), chroma_from_power(power).numpy()
