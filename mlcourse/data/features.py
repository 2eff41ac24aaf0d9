"""Clip features: log-mel spectrograms and aligned piano rolls.

Every clip of the course is 3 seconds of mono audio at 22,050 Hz. Its log-mel spectrogram has
128 bands and a hop of 512 samples (130 frames, centred frames as in librosa); its piano roll
has one row per MIDI pitch on the same 130 frames, so row ``p`` at frame ``t`` says whether
pitch ``p`` sounds at the centre of log-mel frame ``t``.

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
    clips = np.asarray(clips, dtype=np.float32)
    if clips.ndim not in (1, 2):
        raise ValueError(f"clips must be (samples,) or (N, samples), got shape {clips.shape}")
    batch = torch.from_numpy(np.atleast_2d(clips))
    spectrum = torch.stft(
        batch, n_fft=N_FFT, hop_length=HOP_LENGTH, window=torch.hann_window(N_FFT),
        center=True, pad_mode="constant", return_complex=True,
    )
    power = spectrum.real**2 + spectrum.imag**2
    mel = torch.matmul(torch.from_numpy(mel_filterbank()), power)
    db = 10.0 * torch.log10(torch.clamp(mel, min=AMIN))
    peak = db.amax(dim=(1, 2), keepdim=True)
    db = torch.maximum(db, peak - TOP_DB).numpy()
    return db if clips.ndim == 2 else db[0]


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
    clips = np.stack([audio[first + k * CLIP_SAMPLES:first + (k + 1) * CLIP_SAMPLES]
                      for k in range(count)]) if count else np.zeros((0, CLIP_SAMPLES), np.float32)
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
