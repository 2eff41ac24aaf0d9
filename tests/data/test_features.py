"""Features: log-mel against librosa, piano rolls, clip cutting, pooling."""

import librosa
import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from mlcourse.data.features import (
    CLIP_SAMPLES,
    N_FRAMES,
    SAMPLE_RATE,
    chroma_from_power,
    compute_clip_features,
    compute_log_mel,
    compute_piano_roll,
    cut_clips,
    frame_times,
    pool_log_mel,
    pooled_features,
    power_spectrogram,
)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_mel_equals_librosa(dtype):
    rng = np.random.default_rng(0)
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    clips = np.stack(
        [
            0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(CLIP_SAMPLES),
            0.05 * rng.standard_normal(CLIP_SAMPLES),
        ]
    ).astype(dtype)
    ours = compute_log_mel(clips)
    theirs = librosa.power_to_db(
        librosa.feature.melspectrogram(
            y=clips.astype(np.float32), sr=SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=128
        )
    )
    assert ours.shape == (2, 128, N_FRAMES) == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_log_mel_of_one_clip_has_no_batch_axis():
    assert compute_log_mel(np.zeros(CLIP_SAMPLES)).shape == (128, N_FRAMES)
    with pytest.raises(ValueError, match="shape"):
        compute_log_mel(np.zeros((1, 2, CLIP_SAMPLES)))


def test_piano_roll_marks_sounding_frames_only():
    notes = np.array([[1.0, 1.5, 60], [1.2, 4.0, 67]])
    roll = compute_piano_roll(notes, clip_start=1.0)
    times = 1.0 + frame_times()
    np.testing.assert_array_equal(roll[60], (times >= 1.0) & (times < 1.5))
    np.testing.assert_array_equal(roll[67], times >= 1.2)
    assert roll.sum() == roll[60].sum() + roll[67].sum()


def test_cut_clips_are_consecutive_and_whole():
    audio = np.arange(int(10.5 * SAMPLE_RATE), dtype=np.float32)
    clips, starts = cut_clips(audio, start=0.5, n_clips=5)
    assert clips.shape == (3, CLIP_SAMPLES)
    np.testing.assert_allclose(starts, [0.5, 3.5, 6.5], atol=1e-4)
    assert clips[1, 0] == clips[0, -1] + 1  # no gap and no overlap between neighbours


def test_pooling_is_mean_then_std():
    logmel = np.random.default_rng(1).standard_normal((4, 128, N_FRAMES))
    pooled = pool_log_mel(logmel)
    np.testing.assert_allclose(pooled[:, :128], logmel.mean(axis=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled[:, 128:], logmel.std(axis=2), rtol=1e-5, atol=1e-6)


def test_summary_features_equal_librosa():
    from mlcourse.data.features import SUMMARY_NAMES

    rng = np.random.default_rng(2)
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * 261.6 * t) * (t % 0.5 < 0.3) + 0.3 * np.sin(2 * np.pi * 392.0 * t)
    clips = np.stack([0.4 * tone, 0.1 * rng.standard_normal(CLIP_SAMPLES)]).astype(np.float32)
    logmel, summary, _ = compute_clip_features(clips)
    assert summary.shape == (2, len(SUMMARY_NAMES)) == (2, 60)
    column = {name: summary[:, i] for i, name in enumerate(SUMMARY_NAMES)}
    magnitude = np.abs(librosa.stft(clips, n_fft=2048, hop_length=512, center=True, pad_mode="constant"))
    mfcc = librosa.feature.mfcc(S=logmel, n_mfcc=20)
    np.testing.assert_allclose(summary[:, :20], mfcc.mean(axis=2), atol=1e-3)
    np.testing.assert_allclose(summary[:, 20:40], mfcc.std(axis=2), atol=1e-3)
    chroma = librosa.feature.chroma_stft(S=magnitude**2, sr=SAMPLE_RATE, tuning=0.0)
    np.testing.assert_allclose(summary[:, 40:52], chroma.mean(axis=2), atol=1e-5)
    assert np.argmax(summary[0, 40:52]) == 0, "the C tone dominates the chroma of the first clip"
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLE_RATE)[:, 0]
    np.testing.assert_allclose(column["centroid_mean"], centroid.mean(axis=1), rtol=1e-4)
    flatness = librosa.feature.spectral_flatness(S=magnitude)[:, 0]
    np.testing.assert_allclose(column["flatness_mean"], flatness.mean(axis=1), rtol=1e-3)
    rms = librosa.feature.rms(S=magnitude, frame_length=2048)[:, 0]
    np.testing.assert_allclose(column["rms_std"], rms.std(axis=1), rtol=1e-3)
    onset = librosa.onset.onset_strength(S=logmel, lag=1, max_size=1, aggregate=np.mean, center=False)
    np.testing.assert_allclose(column["onset_strength_mean"], onset.mean(axis=1), rtol=1e-4)


def test_chroma_equals_librosa_on_a_rendered_clip(smoke):
    audio = smoke.audio(5)
    power = power_spectrogram(audio)
    ours = chroma_from_power(power)[0].numpy()
    # The filterbank is tuned to A = 440 Hz (tuning=0.0), where chroma_stft would estimate a tuning.
    theirs = librosa.feature.chroma_stft(S=power[0].numpy(), sr=SAMPLE_RATE, n_fft=2048, tuning=0.0)
    assert ours.shape == theirs.shape == (12, N_FRAMES)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    _, summary, chroma = compute_clip_features(audio[None])
    np.testing.assert_allclose(chroma[0], ours, atol=1e-6)
    np.testing.assert_allclose(summary[0, 40:52], ours.mean(axis=1), atol=1e-6)  # one definition


def test_chroma_of_silence_stays_zero_and_a_c_is_a_c():
    t = np.arange(CLIP_SAMPLES) / SAMPLE_RATE
    clips = np.stack([np.zeros(CLIP_SAMPLES), 0.3 * np.sin(2 * np.pi * 261.63 * t)])
    chroma = chroma_from_power(power_spectrogram(clips)).numpy()
    theirs = librosa.feature.chroma_stft(S=power_spectrogram(clips).numpy(), sr=SAMPLE_RATE, tuning=0.0)
    np.testing.assert_allclose(chroma, theirs, atol=1e-5)
    assert not chroma[0].any()
    assert (chroma[1].argmax(axis=0) == 0).all() and np.allclose(chroma[1].max(axis=0), 1)


def test_pooled_features_are_standardised_with_the_training_statistics():
    train_logmel = np.random.default_rng(0).normal(3.0, 2.0, size=(20, 128, 7)).astype(np.float16)
    test_logmel = np.random.default_rng(1).normal(size=(5, 128, 7)).astype(np.float16)
    train_x, test_x = pooled_features(train_logmel, test_logmel)

    def pooled(logmel):
        logmel = logmel.astype(np.float64)
        return np.hstack([logmel.mean(axis=2), logmel.std(axis=2)])

    scaler = StandardScaler().fit(pooled(train_logmel))
    assert train_x.dtype == np.float32 and train_x.shape == (20, 256) and test_x.shape == (5, 256)
    np.testing.assert_allclose(train_x, scaler.transform(pooled(train_logmel)), atol=1e-4)
    np.testing.assert_allclose(test_x, scaler.transform(pooled(test_logmel)), atol=1e-4)


def test_a_constant_feature_stays_finite():
    logmel = np.ones((4, 128, 5), dtype=np.float32)
    (x,) = pooled_features(logmel)
    assert np.isfinite(x).all() and np.all(x == 0)
