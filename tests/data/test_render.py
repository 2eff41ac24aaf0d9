"""The labels are what they claim: instrument, piano roll and tempo checked against the audio."""

import librosa
import numpy as np

from mlcourse.data.features import SAMPLE_RATE
from mlcourse.data.render import INSTRUMENT_FAMILIES, family_of_program, synthesize


def spectral_centroid(audio):
    return float(np.mean(librosa.feature.spectral_centroid(y=audio, sr=SAMPLE_RATE)))


def test_instruments_differ_in_spectral_shape_as_expected():
    # The same melody, dry: a flute is close to a sine, a trumpet is rich in upper harmonics.
    melody = np.array([[0.5 * i, 0.5 * i + 0.45, 60 + [0, 2, 4, 5, 7, 5, 4, 2][i % 8], 100, 0] for i in range(12)])
    centroids = {program: spectral_centroid(synthesize(melody, [program], 6.5)) for program in (73, 56, 40, 0)}
    flute, trumpet, violin, piano = (centroids[p] for p in (73, 56, 40, 0))
    assert trumpet > 1.5 * flute
    assert violin > 1.25 * flute
    assert family_of_program(73) == "flutes" and family_of_program(56) == "brass"


def test_every_family_plays_a_distinct_sound():
    note = np.array([[0.0, 1.0, 67, 100, 0]])
    spectra = {}
    for family, programs in INSTRUMENT_FAMILIES.items():
        audio = synthesize(note, [programs[0]], 1.5)
        assert np.abs(audio).max() > 1e-3, f"{family} is silent"
        spectra[family] = np.abs(np.fft.rfft(audio))
    names = list(spectra)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not np.allclose(spectra[a], spectra[b], rtol=0.05), f"{a} and {b} sound the same"


def chroma_agreement(chromas, rolls, shift):
    """Mean cosine between audio chroma and the piano roll folded to pitch classes (rolled by `shift`)."""
    scores = []
    for chroma, roll in zip(chromas, rolls):
        classes = np.stack([roll[pc::12].any(axis=0) for pc in range(12)]).astype(float)
        classes = np.roll(classes, shift, axis=0)
        sounding = classes.sum(axis=0) > 0
        a, b = chroma[:, sounding], classes[:, sounding]
        cosine = (a * b).sum(0) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0) + 1e-9)
        scores.append(cosine.mean())
    return float(np.mean(scores))


def test_piano_roll_agrees_with_audio_chroma_far_better_than_shifted(smoke):
    rows = range(0, len(smoke), 7)
    chromas = [librosa.feature.chroma_stft(y=smoke.audio(i), sr=SAMPLE_RATE, hop_length=512) for i in rows]
    rolls = smoke.pianoroll[list(rows)]
    aligned = chroma_agreement(chromas, rolls, 0)
    shifted = [chroma_agreement(chromas, rolls, s) for s in (1, 2, 5, 6)]
    print(f"chroma agreement: aligned {aligned:.3f}, pitch-shifted controls {np.round(shifted, 3)}")
    assert aligned > max(shifted) + 0.2


def onset_match(onsets, predicted, tolerance=0.05):
    """Fraction of detected onsets within `tolerance` seconds of a predicted one."""
    if len(onsets) == 0 or len(predicted) == 0:
        return 0.0
    distance = np.abs(onsets[:, None] - predicted[None, :]).min(axis=1)
    return float(np.mean(distance <= tolerance))


def test_metadata_tempo_matches_onsets_in_the_audio(smoke):
    """Score onsets at the metadata tempo explain the audio's onsets better than at any other tempo."""
    from mlcourse.data.build import recipe_dir
    from mlcourse.data.recipe import read_midi

    factors = [0.8, 0.85, 0.9, 1.0, 1.1, 1.15, 1.2, 1.25]
    matches = {factor: [] for factor in factors}
    for index in range(0, len(smoke), 9):
        clip = smoke.meta.iloc[index]
        onsets = librosa.onset.onset_detect(y=smoke.audio(index), sr=SAMPLE_RATE, units="time")
        parts = read_midi(recipe_dir() / "midi" / f"{clip.piece_id}.mid")
        quarters = np.unique(np.concatenate([p[:, 0] for p in parts]))
        length = np.ceil(max((p[:, 0] + p[:, 1]).max() for p in parts))  # the renderer loops the score
        looped = np.concatenate([quarters + repeat * length for repeat in range(8)])
        for factor in factors:
            matches[factor].append(onset_match(onsets, looped * 60 / (clip.tempo_bpm * factor) - clip.start_s))
    mean = {factor: float(np.mean(m)) for factor, m in matches.items()}
    print("onsets matched per tempo factor:", {f: round(m, 3) for f, m in mean.items()})
    best_other = max(m for f, m in mean.items() if f != 1.0)
    assert mean[1.0] > best_other + 0.15
