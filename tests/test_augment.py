"""mlcourse.augment: shapes, dtypes and seeds; each augmentation's identity setting; where a
pitch shift and a time stretch move things, checked against independent computations and
real synthetic tones; noise and tilt; the random module; and the input checks."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from mlcourse.augment import (
    Augment,
    add_noise,
    gain,
    mel_band_centres,
    pitch_shift,
    spectral_tilt,
    time_stretch,
)
from mlcourse.data.features import CLIP_SAMPLES, N_FRAMES, N_MELS, SAMPLE_RATE, compute_log_mel

# The centre frequencies of the mel bands, computed here without the package.
CENTRES = librosa.mel_frequencies(n_mels=N_MELS + 2, fmax=SAMPLE_RATE / 2)[1:-1]


def random_logmel(seed=0, batch_size=4, dtype=torch.float32):
    """Log-mel-like batches: dB values between -80 and 0."""
    generator = torch.Generator().manual_seed(seed)
    return (-80.0 * torch.rand(batch_size, N_MELS, N_FRAMES, generator=generator)).to(dtype)


def nearest_band(frequency):
    return int(np.argmin(np.abs(CENTRES - frequency)))


def sine_log_mel(frequency):
    """The dataset's log-mel spectrogram of 3 seconds of a sine at ``frequency`` Hz."""
    times = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    return torch.from_numpy(compute_log_mel(0.5 * np.sin(2 * np.pi * frequency * times))[None])


def peak_band(logmel):
    """The band of highest mean level of the first item, ignoring the edge frames."""
    return int(logmel[0, :, 5:-5].mean(dim=1).argmax())


def call(name, logmel, parameter):
    """Apply the augmentation ``name`` with one parameter for the whole batch."""
    if name == "add_noise":
        return add_noise(logmel, parameter, torch.Generator().manual_seed(0))
    return AUGMENTATIONS[name](logmel, parameter)


AUGMENTATIONS = {
    "pitch_shift": pitch_shift,
    "time_stretch": time_stretch,
    "gain": gain,
    "spectral_tilt": spectral_tilt,
    "add_noise": add_noise,
}
# A setting of each augmentation that changes the input.
SOME_SETTING = {"pitch_shift": 1.5, "time_stretch": 1.2, "gain": 3.0, "spectral_tilt": 6.0, "add_noise": 10.0}
# The setting of each that leaves the input as it is.
IDENTITY = {"pitch_shift": 0.0, "time_stretch": 1.0, "gain": 0.0, "spectral_tilt": 0.0}


# --------------------------------------------------------------------------------------------
# Shapes, dtypes, devices
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64])
def test_shape_is_kept_and_the_result_is_float32(name, dtype):
    logmel = random_logmel(dtype=dtype)
    result = call(name, logmel, SOME_SETTING[name])
    assert result.shape == logmel.shape
    assert result.dtype == torch.float32
    assert result.device == logmel.device
    assert torch.isfinite(result).all()


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_per_item_parameters_act_item_by_item(name):
    """A (B,) parameter tensor gives each item what the same number gives it alone."""
    logmel = random_logmel(batch_size=3)
    settings = torch.tensor([SOME_SETTING[name], 0.5 * SOME_SETTING[name] + 0.5, 1.0])
    together = call(name, logmel, settings)
    for item, setting in enumerate(settings.tolist()):
        if name == "add_noise":
            # The noise of an item depends on its place in the batch's draw, so compare its
            # level: the noise adds 10^(-snr / 10) of the item's mean power.
            ratio = (10 ** (together[item] / 10)).mean() / (10 ** (logmel[item] / 10)).mean()
            assert float(ratio) == pytest.approx(1 + 10 ** (-setting / 10), rel=0.02)
        else:
            alone = call(name, logmel[item : item + 1], setting)
            torch.testing.assert_close(together[item], alone[0])


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_works_under_no_grad_and_leaves_its_input_alone(name):
    logmel = random_logmel()
    before = logmel.clone()
    with torch.no_grad():
        result = call(name, logmel, SOME_SETTING[name])
    assert not result.requires_grad
    assert torch.equal(logmel, before)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_device_is_kept_on_gpu():
    logmel = random_logmel(dtype=torch.float16).cuda()
    for name in AUGMENTATIONS:
        assert call(name, logmel, SOME_SETTING[name]).device == logmel.device
    augment = Augment(seed=0)
    on_gpu = augment(logmel)
    assert on_gpu.device == logmel.device and on_gpu.dtype == torch.float32
    # The same seed gives the same augmentations on the CPU.
    augment.reset()
    on_cpu = augment(logmel.cpu())
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="CPU torch.Generator"):
        add_noise(logmel, 10.0, torch.Generator(device="cuda"))


# --------------------------------------------------------------------------------------------
# Identity settings, gain and tilt
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_identity_setting_changes_nothing(name):
    logmel = random_logmel()
    assert torch.equal(call(name, logmel, IDENTITY[name]), logmel)


def test_gain_adds_exactly_the_offset():
    logmel = random_logmel(batch_size=3).double()
    offsets = torch.tensor([-6.0, 0.0, 4.5])
    result = gain(logmel, offsets)
    expected = logmel.float() + offsets[:, None, None]
    assert torch.equal(result, expected)
    torch.testing.assert_close((result - logmel.float()).amax(dim=(1, 2)), offsets)


def test_tilt_moves_low_and_high_bands_in_opposite_directions():
    logmel = random_logmel(batch_size=2)
    change = spectral_tilt(logmel, torch.tensor([12.0, -12.0])) - logmel
    # Per band the change is the same in every frame, linear from -6 to +6 dB.
    torch.testing.assert_close(change[0, :, 0], torch.linspace(-6.0, 6.0, N_MELS))
    torch.testing.assert_close(change, change[:, :, :1].expand_as(change))
    assert change[0, :10].max() < 0 < change[0, -10:].min()  # brighter
    assert change[1, :10].min() > 0 > change[1, -10:].max()  # duller


# --------------------------------------------------------------------------------------------
# Pitch shift
# --------------------------------------------------------------------------------------------


def test_mel_band_centres_match_librosa():
    np.testing.assert_allclose(mel_band_centres(), CENTRES)
    # They are where the filterbank's filters peak (to the FFT's resolution).
    filterbank = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=2048, n_mels=N_MELS)
    bins = np.fft.rfftfreq(2048, 1 / SAMPLE_RATE)
    assert np.abs(bins[filterbank.argmax(axis=1)] - CENTRES).max() <= SAMPLE_RATE / 2048


def test_an_octave_up_moves_a_peak_at_440_hz_to_880_hz():
    band_440 = nearest_band(440.0)
    logmel = torch.full((1, N_MELS, N_FRAMES), -80.0)
    logmel[0, band_440] = 0.0
    shifted = pitch_shift(logmel, 12.0)
    # The peak lands in the band whose centre is nearest twice the old band's centre,
    # which is the band nearest 880 Hz (or its neighbour: the bands are about 26 Hz apart).
    assert peak_band(shifted) == nearest_band(2 * CENTRES[band_440])
    assert abs(peak_band(shifted) - nearest_band(880.0)) <= 1
    # And down again.
    assert peak_band(pitch_shift(shifted, -12.0)) == band_440


def test_shifting_the_spectrum_of_a_tone_matches_the_spectrum_of_the_shifted_tone():
    a4 = sine_log_mel(440.0)
    c5 = sine_log_mel(440.0 * 2 ** (3 / 12))
    shifted = pitch_shift(a4, 3.0)
    assert peak_band(c5) != peak_band(a4)
    assert abs(peak_band(shifted) - peak_band(c5)) <= 1
    # A fifth down from a high tone, too.
    e6, a5 = sine_log_mel(1318.5), sine_log_mel(1318.5 * 2 ** (-7 / 12))
    assert abs(peak_band(pitch_shift(e6, -7.0)) - peak_band(a5)) <= 1


def test_pitch_shift_fills_the_bands_left_empty_with_the_floor():
    logmel = random_logmel(batch_size=2)
    shifted = pitch_shift(logmel, torch.tensor([12.0, -12.0]))
    floors = logmel.amin(dim=(1, 2))
    # Up an octave: the lowest bands read from below the first centre.
    below_first = np.flatnonzero(CENTRES / 2 < CENTRES[0])
    assert torch.equal(shifted[0, below_first], floors[0].expand(len(below_first), N_FRAMES))
    # Down an octave: the top bands read from above the last centre.
    above_last = np.flatnonzero(CENTRES * 2 > CENTRES[-1])
    assert torch.equal(shifted[1, above_last], floors[1].expand(len(above_last), N_FRAMES))


def test_pitch_shift_interpolates_between_band_centres():
    """A band reading from between two centres gets the linear mix of the two, in Hz."""
    logmel = random_logmel(batch_size=1)
    semitones = 5.0
    shifted = pitch_shift(logmel, semitones)
    band = 100
    source = CENTRES[band] / 2 ** (semitones / 12)
    lower = np.searchsorted(CENTRES, source) - 1
    weight = (source - CENTRES[lower]) / (CENTRES[lower + 1] - CENTRES[lower])
    expected = (1 - weight) * logmel[0, lower] + weight * logmel[0, lower + 1]
    torch.testing.assert_close(shifted[0, band], expected.float(), rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------------------------
# Time stretch
# --------------------------------------------------------------------------------------------


def onset_logmel(onset_frame=60):
    logmel = torch.full((1, N_MELS, N_FRAMES), -80.0)
    logmel[0, :, onset_frame:] = 0.0
    return logmel


def first_loud_frame(logmel):
    return int(torch.nonzero(logmel[0, 0] > -40.0)[0])


def test_twice_as_fast_moves_an_onset_from_frame_60_to_frame_30():
    stretched = time_stretch(onset_logmel(60), 2.0)
    assert first_loud_frame(stretched) == 30
    # The clip's end (frame 129) now sits at frame 64.5; after it comes the floor.
    assert (stretched[0, :, 65:] == -80.0).all()
    assert (stretched[0, :, 30:65] == 0.0).all()


def test_slower_moves_an_onset_later_and_crops_the_end():
    stretched = time_stretch(onset_logmel(60), 0.5)
    assert first_loud_frame(stretched) == 120
    # The stretch is anchored at the start: frame 0 stays where it was.
    logmel = random_logmel(batch_size=2)
    stretched = time_stretch(logmel, torch.tensor([0.8, 1.3]))
    assert torch.equal(stretched[:, :, 0], logmel[:, :, 0])


def test_time_stretch_interpolates_between_frames():
    logmel = random_logmel(batch_size=1)
    stretched = time_stretch(logmel, 1.25)
    # Output frame 2 reads frame 2.5: the mean of frames 2 and 3.
    torch.testing.assert_close(stretched[0, :, 2], (logmel[0, :, 2] + logmel[0, :, 3]) / 2)


# --------------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------------


def test_noise_at_high_snr_changes_little_and_at_low_snr_a_lot():
    logmel = sine_log_mel(440.0)
    generator = torch.Generator().manual_seed(0)
    nearly_clean = add_noise(logmel, 120.0, generator)
    assert (nearly_clean - logmel).abs().max() < 0.01
    assert (nearly_clean >= logmel - 1e-4).all()  # noise only adds power
    noisy = add_noise(logmel, 0.0, generator)
    assert (noisy - logmel).abs().mean() > 20.0
    # At 0 dB SNR the noise's mean power equals the signal's: the mean power doubles.
    ratio = (10 ** (noisy / 10)).mean() / (10 ** (logmel / 10)).mean()
    assert float(ratio) == pytest.approx(2.0, rel=0.05)


def test_noise_is_seeded():
    logmel = random_logmel()
    first = add_noise(logmel, 10.0, torch.Generator().manual_seed(1))
    again = add_noise(logmel, 10.0, torch.Generator().manual_seed(1))
    other = add_noise(logmel, 10.0, torch.Generator().manual_seed(2))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


# --------------------------------------------------------------------------------------------
# The random module
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_augment_keeps_shape_and_gives_float32(dtype):
    logmel = random_logmel(dtype=dtype)
    result = Augment(seed=0)(logmel)
    assert result.shape == logmel.shape
    assert result.dtype == torch.float32 and result.device == logmel.device
    assert torch.isfinite(result).all()


def test_augment_is_seeded():
    logmel = random_logmel(batch_size=8)
    first = Augment(seed=3)(logmel)
    assert torch.equal(first, Augment(seed=3)(logmel))
    assert not torch.equal(first, Augment(seed=4)(logmel))
    # The stream moves on: two calls give two different views of each clip.
    augment = Augment(seed=3)
    view_1, view_2 = augment(logmel), augment(logmel)
    assert torch.equal(view_1, first)
    assert not torch.equal(view_1, view_2)
    # reset() starts it again, from the first seed or a new one.
    augment.reset()
    assert torch.equal(augment(logmel), first)
    augment.reset(4)
    assert torch.equal(augment(logmel), Augment(seed=4)(logmel))


def test_augment_with_p_zero_is_the_identity():
    logmel = random_logmel(batch_size=8, dtype=torch.float16)
    assert torch.equal(Augment(p=0.0)(logmel), logmel.float())


def test_augment_with_zero_ranges_and_no_noise_is_the_identity():
    logmel = random_logmel(batch_size=8)
    augment = Augment(pitch_semitones=0, stretch=0, gain_db=0, snr_db=None, tilt_db=0, p=1.0)
    assert torch.equal(augment(logmel), logmel)
    assert sorted(augment.last_settings) == ["gain", "pitch_shift", "spectral_tilt", "time_stretch"]


def test_augment_draws_within_its_ranges_and_applies_with_probability_p():
    augment = Augment(pitch_semitones=2.0, stretch=0.1, gain_db=3.0, snr_db=(5.0, 15.0), tilt_db=4.0, p=0.25, seed=0)
    settings = augment.draw(4000)
    bounds = {
        "pitch_shift": (-2, 2),
        "time_stretch": (0.9, 1.1),
        "gain": (-3, 3),
        "add_noise": (5, 15),
        "spectral_tilt": (-4, 4),
    }
    assert sorted(settings) == sorted(bounds)
    for name, (parameters, applied) in settings.items():
        low, high = bounds[name]
        assert parameters.shape == applied.shape == (4000,)
        assert low - 1e-6 <= float(parameters.min()) and float(parameters.max()) <= high + 1e-6
        assert float(applied.float().mean()) == pytest.approx(0.25, abs=0.03)


def test_augment_applies_each_setting_it_drew():
    """Redo one call by hand from its last_settings."""
    logmel = random_logmel(batch_size=6)
    augment = Augment(snr_db=None, p=0.5, seed=2)
    result = augment(logmel)
    expected = logmel
    for name in ["pitch_shift", "time_stretch", "spectral_tilt", "gain"]:
        parameters, applied = augment.last_settings[name]
        changed = AUGMENTATIONS[name](expected, parameters)
        expected = torch.where(applied[:, None, None], changed, expected)
    assert torch.equal(result, expected)


def test_augment_repr_names_its_settings():
    assert "pitch_semitones=2.0" in repr(Augment())


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_bad_spectrograms_are_rejected(name):
    with pytest.raises(ValueError, match=r"shape \(B, 128, T\)"):
        call(name, torch.zeros(N_MELS, N_FRAMES), SOME_SETTING[name])
    with pytest.raises(ValueError, match=r"shape \(B, 128, T\)"):
        call(name, torch.zeros(2, 64, N_FRAMES), SOME_SETTING[name])
    with pytest.raises(ValueError, match="float tensor"):
        call(name, torch.zeros(2, N_MELS, N_FRAMES, dtype=torch.long), SOME_SETTING[name])
    with pytest.raises(ValueError, match="float tensor"):
        call(name, np.zeros((2, N_MELS, N_FRAMES)), SOME_SETTING[name])


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_wrong_number_of_parameters_is_rejected(name):
    with pytest.raises(ValueError, match=r"one number or a \(4,\) tensor"):
        call(name, random_logmel(batch_size=4), torch.ones(3))


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="rate must be > 0"):
        time_stretch(random_logmel(batch_size=2), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        Augment()(torch.zeros(N_MELS, N_FRAMES))
    for arguments, message in [
        ({"pitch_semitones": -1.0}, "pitch_semitones must be >= 0"),
        ({"stretch": 1.0}, "stretch must be below 1"),
        ({"gain_db": "6"}, "gain_db must be a number"),
        ({"snr_db": 10.0}, "snr_db must be a pair"),
        ({"snr_db": (30, 10)}, "lowest, highest"),
        ({"p": 1.5}, "p must be a probability"),
        ({"p": -0.1}, "p must be >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            Augment(**arguments)


def test_delay_moves_each_item_by_its_own_number_of_frames():
    from mlcourse.augment import delay

    features = torch.randn(3, 5, 40)
    frames = torch.tensor([0, 7, 40])
    fill = torch.tensor([-1.0, -2.0, -3.0])
    delayed = delay(features, frames, fill)
    expected = features.clone().numpy()
    for item, (k, value) in enumerate(zip(frames.tolist(), fill.tolist())):
        expected[item] = np.concatenate([np.full((5, k), value), features[item].numpy()[:, : 40 - k]], axis=1)
    np.testing.assert_allclose(delayed.numpy(), expected)
    with pytest.raises(ValueError, match=r"\[0, 40\]"):
        delay(features, 41)


def test_random_delay_is_seeded_and_within_its_range():
    from mlcourse.augment import RandomDelay

    ramp = torch.arange(1.0, 101.0).expand(200, 1, 100).contiguous()  # frame t holds t + 1
    delayed = RandomDelay(12, seed=3)(ramp)
    delays = (delayed == 0).sum(dim=(1, 2))  # the zero-filled start
    assert delays.min() == 0 and delays.max() == 12
    torch.testing.assert_close(RandomDelay(12, seed=3)(ramp), delayed)
    with pytest.raises(ValueError, match="max_frames"):
        RandomDelay(-1)
