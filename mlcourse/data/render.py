"""Render a score's notes to audio with a General MIDI SoundFont.

The synthesiser is tinysoundfont with the TimGM6mb SoundFont that ships inside the pretty_midi
package, so rendering needs no download and is byte-identical from run to run. A *version* of a
piece sets the instruments (GM programs), tempo, transposition, humanisation and the room
(reverb, EQ, noise, gain); :func:`render_version` applies them all.

Taught in ``notebooks/00_data_tour.ipynb``.
"""

from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, lfilter

from .features import SAMPLE_RATE

# General MIDI programs (0-based) grouped into instrument families: the `instrument` concept is
# a family, never one program, so a model must learn the family's sound, not one sample set.
INSTRUMENT_FAMILIES = {
    "keyboard": [0, 1, 4, 6],  # grand piano, bright piano, electric piano, harpsichord
    "organ": [16, 19, 20, 21],  # drawbar, church and reed organ, accordion
    "plucked": [24, 25, 46, 105],  # nylon and steel guitar, harp, banjo
    "strings": [40, 41, 42, 48],  # violin, viola, cello, string ensemble
    "brass": [56, 57, 60, 61],  # trumpet, trombone, French horn, brass section
    "reeds": [64, 65, 68, 71],  # soprano and alto sax, oboe, clarinet
    "flutes": [72, 73, 74, 75],  # piccolo, flute, recorder, pan flute
    "voices": [52, 53, 54],  # choir aahs, voice oohs, synth voice
    "mallets": [8, 11, 12, 13],  # celesta, vibraphone, marimba, xylophone
}
LOWEST_PITCH, HIGHEST_PITCH = 24, 100
_SYNTH_BLOCK = 4096
DRUM_CHANNEL = 9
FRAME_DRUM_LOW, FRAME_DRUM_HIGH = 45, 50  # GM low and high tom


def soundfont_path() -> Path:
    """The TimGM6mb SoundFont that ships inside the pretty_midi package."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.exists():
        raise FileNotFoundError(f"no SoundFont at {path}: reinstall pretty_midi (`pip install pretty_midi`)")
    return path


def family_of_program(program: int) -> str:
    """The instrument family of a GM program (0-based), e.g. 73 -> 'flutes'."""
    for family, programs in INSTRUMENT_FAMILIES.items():
        if program in programs:
            return family
    raise ValueError(f"GM program {program} belongs to no family of INSTRUMENT_FAMILIES")


def synthesize(notes: np.ndarray, programs: list[int], duration: float) -> np.ndarray:
    """Play notes through the SoundFont.

    Args:
        notes: (M, 5) float array of (onset s, offset s, MIDI pitch, velocity 1-127, part);
            part p plays programs[p]; part -1 is the GM drum kit (pitch = drum sound).
        programs: GM program (0-based) of each pitched part.
        duration: length of the output in seconds; notes beyond it are cut.

    Returns:
        (round(duration * 22050),) float32 mono audio, not normalised.
    """
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE)
    soundfont = synth.sfload(str(soundfont_path()))
    channels = [c for c in range(16) if c != DRUM_CHANNEL][: len(programs)]
    for channel, program in zip(channels, programs):
        synth.program_select(channel, soundfont, 0, int(program))
    if np.any(notes[:, 4] < 0):
        synth.program_select(DRUM_CHANNEL, soundfont, 128, 0, is_drums=True)

    # Events as (sample, is_note_on, channel, pitch, velocity); note-offs sort before note-ons.
    events = []
    for onset, offset, pitch, velocity, part in notes:
        channel = DRUM_CHANNEL if part < 0 else channels[int(part)]
        events.append((int(onset * SAMPLE_RATE), 1, channel, int(pitch), int(velocity)))
        events.append((int(offset * SAMPLE_RATE), 0, channel, int(pitch), 0))
    events.sort()

    total = int(round(duration * SAMPLE_RATE))
    audio = np.zeros(total, dtype=np.float32)
    position = 0
    for sample, is_on, channel, pitch, velocity in events + [(total, 0, 0, 0, 0)]:
        sample = min(sample, total)
        while position < sample:
            count = min(_SYNTH_BLOCK, sample - position)
            stereo = np.frombuffer(synth.generate(count), dtype=np.float32)
            audio[position : position + count] = stereo.reshape(-1, 2).mean(axis=1)
            position += count
        if sample >= total:
            break
        if is_on:
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    return audio


def apply_room(
    audio: np.ndarray, reverb: float, eq_tilt: float, snr_db: float, gain_db: float, rng: np.random.Generator
) -> np.ndarray:
    """Colour a dry rendering as a room and a recording chain would.

    Args:
        audio: (samples,) float32 dry audio.
        reverb: wet/dry mix of a synthetic room (0 = dry, 1 = all wet); decay 0.25-1.0 s.
        eq_tilt: -1 (dark, low-passed) .. +1 (bright, high frequencies lifted).
        snr_db: signal-to-noise ratio of the added white noise, in dB.
        gain_db: level of the peak after normalisation, in dB below full scale (<= 0).
        rng: the version's random generator (room impulse response and noise).

    Returns:
        (samples,) float32 audio whose peak is at `gain_db` dBFS.
    """
    if reverb > 0:
        decay = 0.25 + 0.75 * reverb
        t = np.arange(int(decay * SAMPLE_RATE)) / SAMPLE_RATE
        impulse = rng.standard_normal(t.size) * np.exp(-6.9 * t / decay)
        wet = fftconvolve(audio, impulse, mode="full")[: audio.size]
        wet *= np.std(audio) / max(np.std(wet), 1e-12)
        audio = (1 - reverb) * audio + reverb * wet
    lowpassed = lfilter([0.15], [1, -0.85], audio)
    audio = audio + eq_tilt * (audio - lowpassed)
    signal_power = np.mean(audio**2)
    if signal_power > 0:
        audio = audio + rng.standard_normal(audio.size) * np.sqrt(signal_power / 10 ** (snr_db / 10))
    peak = np.max(np.abs(audio))
    if peak > 0:
        audio = audio / peak * 10 ** (gain_db / 20)
    return audio.astype(np.float32)


def perform(parts: list[np.ndarray], version: dict, duration: float) -> np.ndarray:
    """Turn a score's notes into the notes one version plays.

    The score is looped (as folk musicians repeat a tune) until it fills `duration`, played at
    the version's tempo and articulation, transposed (each voice folded by octaves into a
    playable range), humanised (onset jitter of about 12 ms, velocity spread), and, for a single-line tune,
    accompanied by a drone or a bass on the tonic when the version asks for it.

    Args:
        parts: one (M, 3) float array per voice of (onset, duration, MIDI pitch), in quarter notes.
        version: a row of the recipe's versions table (tempo_bpm, articulation, transpose,
            accompaniment, velocity, seed) merged with its piece's row (tonic, bar_quarters).
        duration: seconds of music to produce.

    Returns:
        (N, 5) float array of (onset s, offset s, pitch, velocity, part index) sorted by onset;
        a drone or bass is the part after the score's voices, a frame drum is part -1.
    """
    rng = np.random.default_rng(int(version["seed"]))
    seconds_per_quarter = 60.0 / float(version["tempo_bpm"])
    length = np.ceil(max(float(np.max(p[:, 0] + p[:, 1])) for p in parts if len(p)))
    repeats = int(np.ceil(duration / (length * seconds_per_quarter)))
    rows = []
    for index, part in enumerate(parts):
        for repeat in range(repeats):
            onset = (part[:, 0] + repeat * length) * seconds_per_quarter
            rows.append(
                np.column_stack(
                    [
                        onset,
                        part[:, 1] * seconds_per_quarter * float(version["articulation"]),
                        part[:, 2] + int(version["transpose"]),
                        np.full(len(part), index),
                    ]
                )
            )
    if version["accompaniment"] != "none":
        rows.append(_accompaniment(version, len(parts), repeats * length, seconds_per_quarter))
    notes = np.concatenate(rows)
    notes = notes[notes[:, 0] < duration]
    onset = np.maximum(notes[:, 0] + rng.normal(0.0, 0.012, len(notes)), 0.0)
    offset = onset + np.maximum(notes[:, 1], 0.05)
    drum = notes[:, 3] < 0
    pitch = np.where(drum, notes[:, 2], _fold_into_range(notes[:, 2]))
    velocity = np.clip(
        float(version["velocity"]) + rng.normal(0.0, 10.0, len(notes)) - 12.0 * (notes[:, 3] != 0), 30, 127
    ).round()
    performed = np.column_stack([onset, offset, pitch, velocity, notes[:, 3]])
    return performed[np.argsort(performed[:, 0], kind="stable")]


def _fold_into_range(pitches: np.ndarray) -> np.ndarray:
    pitches = pitches.copy()
    while np.any(low := pitches < LOWEST_PITCH):
        pitches[low] += 12
    while np.any(high := pitches > HIGHEST_PITCH):
        pitches[high] -= 12
    return pitches


def _accompaniment(version: dict, part: int, quarters: float, seconds_per_quarter: float) -> np.ndarray:
    """A drone (tonic and fifth held each bar), a bass (tonic on each beat) or a frame drum."""
    tonic = 36 + (int(version["tonic"]) + int(version["transpose"])) % 12
    bar = float(version["bar_quarters"])
    if version["accompaniment"] == "percussion":
        eighths = np.arange(0.0, quarters, 0.5)
        accent = np.isclose(np.mod(eighths, 1.5 if bar % 1.5 == 0 else 1.0), 0.0)
        pitches = np.where(accent, FRAME_DRUM_LOW, FRAME_DRUM_HIGH)
        return np.column_stack(
            [eighths * seconds_per_quarter, np.full(len(eighths), 0.2), pitches, np.full(len(eighths), -1)]
        )
    if version["accompaniment"] == "drone":
        starts = np.arange(0.0, quarters, bar)
        notes = [(s, bar, p) for s in starts for p in (tonic + 12, tonic + 19)]
    else:
        notes = [(s, 0.9, tonic) for s in np.arange(0.0, quarters, 1.0)]
    notes = np.array(notes, dtype=float)
    return np.column_stack(
        [notes[:, 0] * seconds_per_quarter, notes[:, 1] * seconds_per_quarter, notes[:, 2], np.full(len(notes), part)]
    )


def render_version(parts: list[np.ndarray], version: dict, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Render one version of a piece: perform, synthesise, then colour as a room.

    Args:
        parts: the score's voices, as for :func:`perform`.
        version: recipe row with programs, tempo_bpm, transpose, accompaniment, velocity,
            reverb, eq_tilt, snr_db, gain_db, seed, tonic and bar_quarters.
        duration: seconds to render.

    Returns:
        audio: (round(duration * 22050),) float32 mono, peak-normalised to gain_db dBFS;
        notes: (N, 5) the performed notes (see :func:`perform`).
    """
    notes = perform(parts, version, duration)
    programs = [int(p) for p in str(version["programs"]).split()]
    dry = synthesize(notes, programs, duration)
    rng = np.random.default_rng([int(version["seed"]), 1])
    audio = apply_room(
        dry,
        float(version["reverb"]),
        float(version["eq_tilt"]),
        float(version["snr_db"]),
        float(version["gain_db"]),
        rng,
    )
    return audio, notes
