"""Audio augmentations on log-mel spectrograms, batched, on the device that trains.

Self-supervised training in the style of SimCLR needs two different views of each clip in
every step: the same music, changed in ways that should not change what it is. The dataset
stores each clip as a log-mel spectrogram (128 mel bands by 130 frames, in dB), so the
augmentations work on that directly, on a whole batch at once and on whatever device the
batch is on (the GPU when training there), instead of going back to the audio. Each one
mimics a change to the audio:

* :func:`pitch_shift`: transposing the music up or down (a pitch shifter), by moving the
  spectrum along the frequency axis;
* :func:`time_stretch`: playing faster or slower (a tempo change), by resampling the time
  axis;
* :func:`spectral_tilt`: a tone control or an EQ, as a different microphone, room or mix
  would give: brighter or duller;
* :func:`gain`: playing (or recording) louder or softer;
* :func:`add_noise`: background noise or hiss, at a given signal-to-noise ratio;
* :func:`delay`: an excerpt that starts later, by moving every frame along the time axis (it
  works on any (B, F, T) features, chroma too), and :class:`RandomDelay` to draw the delays.

Each function takes a (B, 128, T) batch and one parameter per item (a (B,) tensor, or one
number for the whole batch), so that it is easy to try and to test, and returns a new float32
batch of the same shape; none of them needs gradients, and all work under ``torch.no_grad()``.
:class:`Augment` draws random parameters for every item and applies the five in turn.

Taught in notebooks/08_self_supervised.ipynb (and the delays in notebooks/07_cross_modal.ipynb)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from mlcourse.data.features import AMIN, N_MELS, SAMPLE_RATE

__all__ = [
    "Augment",
    "RandomDelay",
    "add_noise",
    "delay",
    "gain",
    "mel_band_centres",
    "pitch_shift",
    "spectral_tilt",
    "time_stretch",
]


# --------------------------------------------------------------------------------------------
# The frequency of each mel band
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _mel_band_centres():
    import librosa

    # The filterbank (librosa.filters.mel) spaces N_MELS + 2 points evenly on the mel scale
    # up to the Nyquist frequency; band b rises from point b, peaks at point b + 1 and falls
    # to point b + 2. The peaks are the bands' centres.
    points = librosa.mel_frequencies(n_mels=N_MELS + 2, fmax=SAMPLE_RATE / 2, htk=False)
    return points[1:-1]


def mel_band_centres():
    """The centre frequency of each of the 128 mel bands of the dataset's spectrograms.

    Returns:
        (128,) float64 array of frequencies in Hz, increasing: about 26 Hz apart below 1 kHz,
        where the (Slaney) mel scale is linear, and a constant ratio apart above it.

    Example:
        >>> centres = mel_band_centres()
        >>> int(np.argmin(np.abs(centres - 440.0)))
        16

    These are the centres between which :func:`pitch_shift` moves energy.
    """
    return _mel_band_centres().copy()


# --------------------------------------------------------------------------------------------
# The five augmentations
# --------------------------------------------------------------------------------------------


def pitch_shift(logmel, semitones):
    """Shift each item up or down in pitch by moving its spectrum along the mel bands.

    A tone at frequency f moves to ``f * 2^(semitones / 12)``: band b, whose centre is f_b,
    takes the value the item had at frequency ``f_b / 2^(semitones / 12)``, linearly
    interpolated between the two bands whose centres surround that frequency. Bands that
    would read from below the lowest band or above the highest take the item's floor value
    (its minimum, silence). So +12 moves everything up an octave, and the top octave falls
    off the end.

    This is a pitch shift of the spectrogram, not a resampling of the audio: it is exact for
    the band centres, approximate for the band widths. Above 1 kHz the mel bands widen with
    frequency, so a real tone moved up an octave would land in a band about twice as wide and
    read about 3 dB lower; here it keeps its level. It also moves the whole spectrum, the
    timbre's resonances (formants) included, as resampling does.

    Args:
        logmel: (B, 128, T) float tensor of log-mel spectrograms in dB.
        semitones: (B,) tensor of shifts, one per item, or a number for all of them;
            positive shifts up.

    Returns:
        (B, 128, T) float32 tensor on the device of ``logmel``.

    Raises:
        ValueError: If ``logmel`` is not a (B, 128, T) float tensor, or ``semitones`` has
            neither one entry nor B entries.

    Example:
        >>> logmel = torch.randn(2, 128, 130)
        >>> torch.equal(pitch_shift(logmel, 0.0), logmel)
        True

    Taught in notebooks/08_self_supervised.ipynb
    """
    logmel = _checked_logmel(logmel)
    semitones = _per_item(semitones, logmel, "semitones")
    centres = torch.as_tensor(_mel_band_centres(), dtype=torch.float32, device=logmel.device)
    ratio = 2.0 ** (semitones / 12.0)
    # (B, 128): the frequency each band reads from, then where that falls among the bands.
    sources = centres[None, :] / ratio[:, None]
    positions = _band_positions(sources, centres)
    return _interpolate(logmel, positions[:, :, None], axis=1)


def time_stretch(logmel, rate):
    """Play each item faster (``rate > 1``) or slower (``rate < 1``), keeping its T frames.

    Output frame t takes the item's value at frame ``t * rate``, linearly interpolated
    between the two frames around it. The stretch is anchored at the clip's start: frame 0
    stays frame 0, and an event at frame 60 moves to frame ``60 / rate`` (30 for a rate of
    2). When faster, the clip's content ends early and the frames after it take the item's
    floor value (its minimum, silence); when slower, the end of the clip is cut off.

    Like a tempo change, notes become shorter or longer and the pitch stays; unlike a real
    time stretch of the audio, the frames are interpolated, so a fast stretch also blurs
    short events.

    Args:
        logmel: (B, 128, T) float tensor of log-mel spectrograms in dB.
        rate: (B,) tensor of rates > 0, one per item, or a number for all of them.

    Returns:
        (B, 128, T) float32 tensor on the device of ``logmel``.

    Raises:
        ValueError: If ``logmel`` is not a (B, 128, T) float tensor, or ``rate`` has neither
            one entry nor B entries, or a rate is not > 0.

    Example:
        >>> logmel = torch.randn(2, 128, 130)
        >>> torch.equal(time_stretch(logmel, 1.0), logmel)
        True

    Taught in notebooks/08_self_supervised.ipynb
    """
    logmel = _checked_logmel(logmel)
    rate = _per_item(rate, logmel, "rate")
    if not (rate > 0).all():
        raise ValueError(f"rate must be > 0 (1: unchanged, 2: twice as fast), got {rate.tolist()}.")
    frames = torch.arange(logmel.shape[2], dtype=torch.float32, device=logmel.device)
    # (B, T): the (fractional) frame each output frame reads from.
    positions = frames[None, :] * rate[:, None]
    return _interpolate(logmel, positions[:, None, :], axis=2)


def gain(logmel, db):
    """Make each item louder or softer: add ``db`` decibels to every band and frame.

    Args:
        logmel: (B, 128, T) float tensor of log-mel spectrograms in dB.
        db: (B,) tensor of offsets in dB, one per item, or a number for all of them.

    Returns:
        (B, 128, T) float32 tensor on the device of ``logmel``.

    Raises:
        ValueError: If ``logmel`` is not a (B, 128, T) float tensor, or ``db`` has neither
            one entry nor B entries.

    Example:
        >>> gain(torch.zeros(1, 128, 130), 6.0).max().item()
        6.0

    Taught in notebooks/08_self_supervised.ipynb
    """
    logmel = _checked_logmel(logmel)
    db = _per_item(db, logmel, "db")
    return logmel + db[:, None, None]


def add_noise(logmel, snr_db, generator=None):
    """Add white noise to each item, ``snr_db`` decibels below the item's mean power.

    Decibels do not add; powers do. So the spectrogram goes back to power
    (``10^(dB / 10)``), the noise is added there, and the sum goes back to dB. The noise is
    white: the same expected power in every band and frame (the mel filters are normalised
    by their width, so white noise gives every band about the same power), at
    ``mean power of the item / 10^(snr_db / 10)``. Each bin fluctuates around that level,
    exponentially distributed as the power of Gaussian noise is. A high ``snr_db`` (say 40)
    only fills the quietest parts; a low one (say 0) drowns most of the music.

    The fluctuations are drawn on the CPU, then moved to the device of ``logmel``, so that a
    seeded generator gives the same noise on any device.

    Args:
        logmel: (B, 128, T) float tensor of log-mel spectrograms in dB.
        snr_db: (B,) tensor of signal-to-noise ratios in dB, one per item, or a number for
            all of them.
        generator: A CPU ``torch.Generator`` (seed it for reproducible noise), or None for
            torch's global random state.

    Returns:
        (B, 128, T) float32 tensor on the device of ``logmel``, in dB.

    Raises:
        ValueError: If ``logmel`` is not a (B, 128, T) float tensor, ``snr_db`` has neither
            one entry nor B entries, or the generator is not a CPU generator.

    Example:
        >>> quiet = add_noise(torch.zeros(1, 128, 130), 100.0, torch.Generator().manual_seed(0))
        >>> bool(quiet.max() < 0.01)
        True

    Taught in notebooks/08_self_supervised.ipynb
    """
    logmel = _checked_logmel(logmel)
    snr_db = _per_item(snr_db, logmel, "snr_db")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            f"the generator must be a CPU torch.Generator, got one on "
            f"{generator.device}: the noise is drawn on the CPU."
        )
    power = 10.0 ** (logmel / 10.0)
    signal_power = power.mean(dim=(1, 2), keepdim=True)
    noise_power = signal_power / 10.0 ** (snr_db[:, None, None] / 10.0)
    fluctuation = torch.empty(logmel.shape).exponential_(generator=generator)
    noisy = power + noise_power * fluctuation.to(logmel.device)
    return 10.0 * torch.log10(noisy.clamp_min(AMIN))


def spectral_tilt(logmel, tilt_db):
    """Tilt each item's spectrum: a simple EQ that makes it brighter or duller.

    A ramp of ``tilt_db`` decibels in all, linear in the band index, is added to every
    frame: ``-tilt_db / 2`` on the lowest band, ``+tilt_db / 2`` on the highest, 0 in the
    middle. A positive tilt lifts the highs and lowers the lows (like a treble boost or a
    gentle high-pass filter); a negative one does the opposite (like a low-pass filter or a
    muffled recording). Above 1 kHz the bands are evenly spaced in log-frequency, so there
    the ramp is a constant number of dB per octave, as a tilt EQ's.

    Args:
        logmel: (B, 128, T) float tensor of log-mel spectrograms in dB.
        tilt_db: (B,) tensor of tilts in dB (highest band minus lowest band), one per item,
            or a number for all of them.

    Returns:
        (B, 128, T) float32 tensor on the device of ``logmel``.

    Raises:
        ValueError: If ``logmel`` is not a (B, 128, T) float tensor, or ``tilt_db`` has
            neither one entry nor B entries.

    Example:
        >>> tilted = spectral_tilt(torch.zeros(1, 128, 130), 12.0)
        >>> tilted[0, 0, 0].item(), tilted[0, -1, 0].item()
        (-6.0, 6.0)

    Taught in notebooks/08_self_supervised.ipynb
    """
    logmel = _checked_logmel(logmel)
    tilt_db = _per_item(tilt_db, logmel, "tilt_db")
    ramp = torch.linspace(-0.5, 0.5, N_MELS, device=logmel.device)
    return logmel + tilt_db[:, None, None] * ramp[None, :, None]


def delay(features, frames, fill=0.0):
    """Delay each item: its frames move ``frames`` later, and the new first frames hold ``fill``.

    Output frame t of item i is input frame ``t - frames[i]``; the last ``frames[i]`` frames fall
    off the end, as when an excerpt of the same length starts that much earlier in the music.

    Args:
        features: (B, F, T) tensor: log-mels, chroma, piano rolls.
        frames: (B,) int tensor of delays in frames, each in [0, T], or one int for all items.
        fill: What the first frames hold: a number, or a (B,) tensor, one per item (e.g. each
            clip's floor, ``logmel.amin(dim=(1, 2))``, for the silence of a log-mel).

    Returns:
        (B, F, T) tensor of the dtype of ``features``, on its device.

    Raises:
        ValueError: If ``features`` is not 3-D, or a delay is outside [0, T].

    Example:
        >>> delay(torch.arange(4.0).reshape(1, 1, 4), 1, fill=-1.0)
        tensor([[[-1.,  0.,  1.,  2.]]])

    Taught in notebooks/07_cross_modal.ipynb
    """
    if not torch.is_tensor(features) or features.dim() != 3:
        raise ValueError(
            f"features must be a (B, F, T) tensor, got {type(features).__name__} "
            f"{tuple(getattr(features, 'shape', ()))}"
        )
    n_frames = features.shape[2]
    frames = torch.as_tensor(frames, device=features.device).long().reshape(-1).expand(len(features))
    if ((frames < 0) | (frames > n_frames)).any():
        raise ValueError(f"delays must lie in [0, {n_frames}] frames, got {frames.tolist()}")
    fill = torch.as_tensor(fill, dtype=features.dtype, device=features.device).reshape(-1, 1, 1)
    source = torch.arange(n_frames, device=features.device)[None, :] - frames[:, None]  # (B, T)
    moved = features.gather(2, source.clamp(min=0)[:, None, :].expand_as(features))
    return torch.where((source >= 0)[:, None, :], moved, fill)


class RandomDelay(torch.nn.Module):
    """Delay each item of a batch by a random number of frames, 0 to ``max_frames`` (see :func:`delay`).

    Trained on randomly delayed excerpts, an encoder learns not to care where in its window the
    music starts: the invariance that searching with unaligned excerpts needs.

    Args:
        max_frames: The longest delay, in frames (>= 0).
        fill: What the new first frames hold (0: silence, for chroma and piano rolls).
        seed: Seed of the module's own CPU generator.

    Example:
        >>> RandomDelay(20, seed=0)(torch.rand(3, 12, 130)).shape
        torch.Size([3, 12, 130])

    Taught in notebooks/07_cross_modal.ipynb
    """

    def __init__(self, max_frames, fill=0.0, seed=0):
        super().__init__()
        if isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 0:
            raise ValueError(f"max_frames must be an int >= 0, got {max_frames!r}")
        self.max_frames, self.fill, self.seed = int(max_frames), fill, seed
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def forward(self, features):
        """Args: features: (B, F, T) tensor. Returns: the batch, each item delayed at random."""
        frames = torch.randint(0, self.max_frames + 1, (len(features),), generator=self.generator)
        return delay(features, frames.to(features.device), self.fill)

    def extra_repr(self):
        return f"max_frames={self.max_frames}, fill={self.fill}, seed={self.seed}"


# --------------------------------------------------------------------------------------------
# Random augmentation of a batch
# --------------------------------------------------------------------------------------------


class Augment(torch.nn.Module):
    """Random audio augmentations of a batch of log-mel spectrograms, as a module.

    Each call draws new parameters for every item, uniformly within the given ranges, and
    applies, in this order (each to each item with probability ``p``, independently):

    1. :func:`pitch_shift` by up to ``pitch_semitones`` up or down: transposition;
    2. :func:`time_stretch` at a rate within ``1 +- stretch``: a tempo change;
    3. :func:`spectral_tilt` by up to ``tilt_db`` either way: an EQ, a microphone, a room;
    4. :func:`gain` by up to ``gain_db`` either way: a louder or softer recording;
    5. :func:`add_noise` at a signal-to-noise ratio within ``snr_db``: background noise.

    Calling it twice on the same batch gives two views of each clip for a SimCLR-style loss
    (:func:`mlcourse.losses.nt_xent_loss`). A range of 0 (or ``snr_db=None``) turns an
    augmentation off.

    The random numbers come from the module's own CPU generator, and are moved to the
    batch's device, so a run is reproducible from ``seed`` alone, on any device, whatever else
    draws random numbers. :meth:`reset` restarts the stream.

    Args:
        pitch_semitones: Largest pitch shift in semitones, >= 0.
        stretch: Largest relative tempo change, in [0, 1): rates lie in
            ``[1 - stretch, 1 + stretch]``.
        tilt_db: Largest spectral tilt in dB, >= 0.
        gain_db: Largest gain in dB, >= 0.
        snr_db: ``(lowest, highest)`` signal-to-noise ratio in dB, or None for no noise.
        p: Probability, in [0, 1], that each augmentation is applied to each item.
        seed: Seed of the module's generator.

    Attributes:
        generator: The CPU ``torch.Generator`` of every draw.
        last_settings: The settings of the last call (see :meth:`draw`); empty before it.

    Raises:
        ValueError: If a range is negative, ``stretch`` is not in [0, 1), ``snr_db`` is not
            None or an increasing pair, or ``p`` is not in [0, 1].

    Example:
        >>> augment = Augment(seed=0)
        >>> logmel = torch.randn(4, 128, 130)
        >>> first, second = augment(logmel), augment(logmel)
        >>> first.shape, torch.equal(first, second)
        (torch.Size([4, 128, 130]), False)

    Taught in notebooks/08_self_supervised.ipynb
    """

    def __init__(
        self, pitch_semitones=2.0, stretch=0.15, gain_db=6.0, snr_db=(10.0, 30.0), tilt_db=12.0, p=0.8, seed=0
    ):
        super().__init__()
        for name, value in (
            ("pitch_semitones", pitch_semitones),
            ("stretch", stretch),
            ("gain_db", gain_db),
            ("tilt_db", tilt_db),
        ):
            _require_number(value, name, lowest=0.0)
        if stretch >= 1:
            raise ValueError(
                f"stretch must be below 1, got {stretch!r}: rates run from "
                "1 - stretch to 1 + stretch, and must stay above 0."
            )
        if snr_db is not None:
            if not isinstance(snr_db, (tuple, list)) or len(snr_db) != 2:
                raise ValueError(
                    f"snr_db must be a pair (lowest, highest) in dB, or None for no noise; got {snr_db!r}."
                )
            for value in snr_db:
                _require_number(value, "snr_db")
            if snr_db[0] > snr_db[1]:
                raise ValueError(f"snr_db must be (lowest, highest), got {snr_db!r}.")
            snr_db = (float(snr_db[0]), float(snr_db[1]))
        _require_number(p, "p", lowest=0.0)
        if p > 1:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}.")
        self.pitch_semitones = pitch_semitones
        self.stretch = stretch
        self.gain_db = gain_db
        self.snr_db = snr_db
        self.tilt_db = tilt_db
        self.p = p
        self.generator = torch.Generator()
        self.seed = seed
        self.reset(seed)
        self.last_settings = {}

    def reset(self, seed=None):
        """Restart the random stream, from ``seed`` (None: the seed it was built with).

        Args:
            seed: An integer seed, or None.

        Taught in notebooks/08_self_supervised.ipynb
        """
        if seed is not None:
            self.seed = seed
        self.generator.manual_seed(self.seed)

    def draw(self, batch_size):
        """Draw the random settings of one batch, on the CPU.

        Args:
            batch_size: B.

        Returns:
            A dict with, for each augmentation (``"pitch_shift"``, ``"time_stretch"``,
            ``"spectral_tilt"``, ``"gain"`` and, unless ``snr_db`` is None, ``"add_noise"``),
            a pair ``(parameters, applied)``: a (B,) float32 tensor of parameters and a (B,)
            bool tensor, True for the items that get the augmentation.

        Taught in notebooks/08_self_supervised.ipynb
        """
        ranges = {
            "pitch_shift": (-self.pitch_semitones, self.pitch_semitones),
            "time_stretch": (1.0 - self.stretch, 1.0 + self.stretch),
            "spectral_tilt": (-self.tilt_db, self.tilt_db),
            "gain": (-self.gain_db, self.gain_db),
        }
        if self.snr_db is not None:
            ranges["add_noise"] = self.snr_db
        settings = {}
        for name, (low, high) in ranges.items():
            parameters = low + (high - low) * torch.rand(batch_size, generator=self.generator)
            applied = torch.rand(batch_size, generator=self.generator) < self.p
            settings[name] = (parameters, applied)
        return settings

    @torch.no_grad()
    def forward(self, logmel):
        """Augment a batch (see the class docstring).

        Args:
            logmel: (B, 128, T) float tensor of log-mel spectrograms in dB (float16 from the
                dataset is fine), on any device.

        Returns:
            (B, 128, T) float32 tensor on the same device.

        Raises:
            ValueError: If ``logmel`` is not a (B, 128, T) float tensor.

        Taught in notebooks/08_self_supervised.ipynb
        """
        logmel = _checked_logmel(logmel)
        self.last_settings = self.draw(len(logmel))
        augmentations = {
            "pitch_shift": pitch_shift,
            "time_stretch": time_stretch,
            "spectral_tilt": spectral_tilt,
            "gain": gain,
        }
        for name, (parameters, applied) in self.last_settings.items():
            parameters = parameters.to(logmel.device)
            if name == "add_noise":
                augmented = add_noise(logmel, parameters, self.generator)
            else:
                augmented = augmentations[name](logmel, parameters)
            # Keep the augmented version only for the items whose coin came up.
            logmel = torch.where(applied.to(logmel.device)[:, None, None], augmented, logmel)
        return logmel

    def extra_repr(self):
        return (
            f"pitch_semitones={self.pitch_semitones}, stretch={self.stretch}, "
            f"gain_db={self.gain_db}, snr_db={self.snr_db}, tilt_db={self.tilt_db}, "
            f"p={self.p}, seed={self.seed}"
        )


# --------------------------------------------------------------------------------------------
# Shared by the augmentations
# --------------------------------------------------------------------------------------------


def _band_positions(frequencies, centres):
    """Where each frequency falls among the band centres, as a fractional band index.

    A frequency halfway between the centres of bands 9 and 10 is at 9.5 (linear in Hz
    between neighbouring centres); one below the first centre is below 0, one above the last
    is above 127.
    """
    # The first centre above each frequency (at least 1, at most the last band), and the one
    # before it.
    upper = torch.searchsorted(centres, frequencies.contiguous()).clamp(1, len(centres) - 1)
    lower = upper - 1
    fraction = (frequencies - centres[lower]) / (centres[upper] - centres[lower])
    return lower + fraction


def _interpolate(logmel, positions, axis):
    """The values of ``logmel`` at fractional ``positions`` along ``axis`` (1: bands, 2: frames).

    ``positions`` has the shape of ``logmel`` or broadcasts to it (size 1 along the other
    axis): entry ``[i, b, t]`` says where along ``axis`` to read for output ``[i, b, t]``.
    Values are linearly interpolated between the two neighbouring entries; positions outside
    the axis read the item's floor value (its minimum).
    """
    size = logmel.shape[axis]
    positions = positions.expand_as(logmel)
    below = positions.floor().clamp(0, size - 1)
    above = (below + 1).clamp(max=size - 1)
    values = torch.lerp(logmel.gather(axis, below.long()), logmel.gather(axis, above.long()), positions - below)
    inside = (positions >= 0) & (positions <= size - 1)
    floor = logmel.amin(dim=(1, 2), keepdim=True)
    return torch.where(inside, values, floor)


def _checked_logmel(logmel):
    """``logmel`` as float32, checked to be a (B, 128, T) float tensor."""
    if not torch.is_tensor(logmel) or not logmel.is_floating_point():
        raise ValueError(
            f"logmel must be a float tensor of shape (B, {N_MELS}, T), got "
            f"{type(logmel).__name__} {getattr(logmel, 'dtype', '')}. Convert "
            "with torch.as_tensor(logmel, dtype=torch.float32)."
        )
    if logmel.ndim != 3 or logmel.shape[1] != N_MELS or logmel.shape[2] < 1:
        raise ValueError(
            f"logmel must have shape (B, {N_MELS}, T), a batch of log-mel "
            f"spectrograms; got {tuple(logmel.shape)}. A single clip needs "
            "logmel[None]."
        )
    return logmel.float()


def _per_item(value, logmel, name):
    """``value`` as a (B,) float32 tensor on the device of ``logmel``: one number per item.

    A single number (or a tensor of one entry) is used for every item.
    """
    batch_size = len(logmel)
    value = torch.as_tensor(value, dtype=torch.float32, device=logmel.device)
    if value.numel() == 1:
        return value.reshape(1).expand(batch_size)
    if value.shape != (batch_size,):
        raise ValueError(
            f"{name} must be one number or a ({batch_size},) tensor, one per item "
            f"of the batch; got shape {tuple(value.shape)}."
        )
    return value


def _require_number(value, name, lowest=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if lowest is not None and value < lowest:
        raise ValueError(f"{name} must be >= {lowest}, got {value!r}.")
