"""Speaker diarization for transcribed words, in plain numpy.

The method is deliberately small and explainable:

1. Every word gets a voice fingerprint from the audio around it (the word plus half a second
   either side, which averages out what is being said and keeps who is saying it): the mean and
   spread of the MFCCs (vocal-tract shape) and the median pitch (f0, from autocorrelation).
2. Fingerprints are standardised and clustered with k-means (k-means++ start, several restarts).
   With ``num_speakers`` the number of clusters is fixed; otherwise every k from 2 up is tried and
   the best silhouette wins among splits where every speaker holds at least 15 % of the words,
   and a single speaker is kept when no split is clearly better.
3. A Viterbi pass over the word sequence, with a cost for every change of speaker, smooths the
   labels, so one word that sounds odd does not flip the speaker mid-sentence.
4. Speakers are named ``speaker_0``, ``speaker_1``... in order of first appearance.

Example::

    result = transcribe(audio, sample_rate=16000)
    words = assign_speakers(audio, 16000, result.words, num_speakers=2)
    {w.speaker_id for w in words}  # {"speaker_0", "speaker_1"}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from prefect_elevenlabs.local.engines.stt import Word

__all__ = ["MAX_SPEAKERS", "assign_speakers", "word_features"]

MAX_SPEAKERS = 32
"""The most speakers ElevenLabs' ``num_speakers`` accepts; the same cap applies here."""

_AUTO_MAX_SPEAKERS = 8
_MIN_SPEAKER_WORDS = 3
_MIN_SPEAKER_SHARE = 0.15  # of the words, when the number of speakers is estimated
_DEFAULT_THRESHOLD = 0.28
_CONTEXT_SECONDS = 0.5
_FRAME_SECONDS = 0.025
_PITCH_FRAME_SECONDS = 0.040
_HOP_SECONDS = 0.010
_MIN_WORD_SECONDS = 0.12
_N_MELS = 26
_N_MFCC = 13  # c0 (loudness) is dropped: level says more about the microphone than the speaker
_F0_MIN, _F0_MAX = 60.0, 400.0
_VOICING_THRESHOLD = 0.45
_SILHOUETTE_SAMPLE = 1500
_SEED = 0


def _as_frames(audio: np.ndarray) -> np.ndarray:
    """The input as (frames,) or (frames, channels), without copying it."""
    array = np.asarray(audio)
    if array.ndim == 2 and array.shape[0] <= 8 < array.shape[1]:
        array = array.T
    if array.ndim not in (1, 2):
        raise ValueError(f"audio must be mono (frames,) or (frames, channels), got {array.shape}")
    return array


def _mono_float(block: np.ndarray) -> np.ndarray:
    """One slice as float32 mono in [-1, 1]; slices keep memory flat for long recordings."""
    scale = (
        float(np.iinfo(block.dtype).max) + 1.0 if np.issubdtype(block.dtype, np.integer) else 1.0
    )
    if block.ndim == 2:
        block = block.mean(axis=1, dtype=np.float32)
    return (np.asarray(block, dtype=np.float32) / np.float32(scale)).astype(np.float32, copy=False)


def _frames(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    if signal.size < length:
        signal = np.pad(signal, (0, length - signal.size))
    count = 1 + (signal.size - length) // hop
    return np.lib.stride_tricks.sliding_window_view(signal, length)[::hop][:count]


def _mel_filterbank(sample_rate: int, n_fft: int) -> np.ndarray:
    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    def mel_to_hz(mel: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)

    top = min(8000.0, sample_rate / 2.0)
    edges = mel_to_hz(np.linspace(hz_to_mel(np.array(60.0)), hz_to_mel(np.array(top)), _N_MELS + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    bank = np.zeros((_N_MELS, bins.size))
    for i in range(_N_MELS):
        low, centre, high = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins - low) / max(centre - low, 1e-9)
        falling = (high - bins) / max(high - centre, 1e-9)
        bank[i] = np.clip(np.minimum(rising, falling), 0.0, None)
    return bank


def _dct_matrix() -> np.ndarray:
    n = np.arange(_N_MELS)
    k = np.arange(_N_MFCC)[:, None]
    return np.cos(np.pi / _N_MELS * (n + 0.5) * k) * math.sqrt(2.0 / _N_MELS)


class _Analyzer:
    """Computes per-word fingerprints; filters are built once per sample rate."""

    def __init__(self, sample_rate: int) -> None:
        self.rate = sample_rate
        self.frame = max(16, int(_FRAME_SECONDS * sample_rate))
        self.pitch_frame = max(32, int(_PITCH_FRAME_SECONDS * sample_rate))
        self.hop = max(1, int(_HOP_SECONDS * sample_rate))
        self.n_fft = 1 << (self.frame - 1).bit_length()
        self.window = np.hanning(self.frame).astype(np.float32)
        self.mel = _mel_filterbank(sample_rate, self.n_fft).astype(np.float32)
        self.dct = _dct_matrix().astype(np.float32)
        self.min_lag = max(1, int(sample_rate / _F0_MAX))
        self.max_lag = int(sample_rate / _F0_MIN)

    def fingerprint(self, segment: np.ndarray) -> np.ndarray:
        frames = _frames(segment, self.frame, self.hop) * self.window
        power = np.abs(np.fft.rfft(frames, n=self.n_fft, axis=1)) ** 2
        log_mel = np.log(power @ self.mel.T + 1e-8)
        # Only the louder frames speak for the voice; pauses inside a word span are noise.
        energy = log_mel.mean(axis=1)
        keep = energy >= energy.max() - 5.0
        mfcc = log_mel[keep] @ self.dct.T
        mean = mfcc[:, 1:].mean(axis=0)
        spread = mfcc[:, 1:].std(axis=0)
        return np.concatenate([mean, spread, [self._log_pitch(segment)]])

    def _log_pitch(self, segment: np.ndarray) -> float:
        frames = _frames(segment, self.pitch_frame, self.hop)
        frames = frames - frames.mean(axis=1, keepdims=True)
        size = 1 << (2 * self.pitch_frame - 1).bit_length()
        spectrum = np.fft.rfft(frames, n=size, axis=1)
        acf = np.fft.irfft(np.abs(spectrum) ** 2, n=size, axis=1)[:, : self.max_lag + 1]
        zero = acf[:, :1]
        valid = zero[:, 0] > 1e-9
        if not valid.any():
            return math.nan
        norm = acf[valid, self.min_lag :] / zero[valid]
        lags = np.argmax(norm, axis=1)
        peaks = norm[np.arange(lags.size), lags]
        voiced = peaks >= _VOICING_THRESHOLD
        if not voiced.any():
            return math.nan
        return float(np.median(np.log(self.rate / (lags[voiced] + self.min_lag))))


def word_features(
    audio: np.ndarray, sample_rate: int, words: Sequence[Word], context: float = _CONTEXT_SECONDS
) -> np.ndarray:
    """Returns one fingerprint row per word: MFCC 1-12 means and spreads, then log f0.

    Each word is analysed over its own span widened by ``context`` seconds on both sides, and
    over at least 0.12 s. The pitch column is NaN when no frame is voiced.
    """
    frames = _as_frames(audio)
    analyzer = _Analyzer(int(sample_rate))
    rows = np.empty((len(words), 2 * (_N_MFCC - 1) + 1))
    for i, word in enumerate(words):
        start, end = float(word.start) - context, float(word.end) + context
        if end - start < _MIN_WORD_SECONDS:
            centre = (start + end) / 2.0
            start, end = centre - _MIN_WORD_SECONDS / 2.0, centre + _MIN_WORD_SECONDS / 2.0
        lo = max(0, int(start * sample_rate))
        hi = min(frames.shape[0], max(lo + analyzer.frame, int(end * sample_rate)))
        lo = max(0, min(lo, hi - analyzer.frame))
        rows[i] = analyzer.fingerprint(_mono_float(frames[lo:hi]))
    return rows


def _standardize(features: np.ndarray) -> np.ndarray:
    data = features.copy()
    pitch = data[:, -1]
    missing = np.isnan(pitch)
    # An unvoiced word gets the typical pitch so it sides with neither speaker on that axis.
    pitch[missing] = np.nanmedian(pitch) if not missing.all() else 0.0
    scale = data.std(axis=0)
    scale[scale < 1e-9] = 1.0
    data = (data - data.mean(axis=0)) / scale
    return data


def _kmeans(data: np.ndarray, k: int, rng: np.random.Generator, restarts: int = 8) -> np.ndarray:
    best_labels = np.zeros(len(data), dtype=int)
    best_inertia = math.inf
    for _ in range(restarts):
        centres = [data[rng.integers(len(data))]]
        for _ in range(1, k):
            dist = np.min([np.sum((data - c) ** 2, axis=1) for c in centres], axis=0)
            total = dist.sum()
            pick = rng.choice(len(data), p=dist / total) if total > 0 else rng.integers(len(data))
            centres.append(data[pick])
        centre_array = np.array(centres)
        labels = np.zeros(len(data), dtype=int)
        for _ in range(100):
            dist = ((data[:, None, :] - centre_array[None, :, :]) ** 2).sum(axis=2)
            new_labels = dist.argmin(axis=1)
            for j in range(k):
                members = data[new_labels == j]
                if len(members):
                    centre_array[j] = members.mean(axis=0)
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
        inertia = float(((data - centre_array[labels]) ** 2).sum())
        if inertia < best_inertia:
            best_inertia, best_labels = inertia, labels
    return best_labels


def _silhouette(data: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> float:
    if len(data) > _SILHOUETTE_SAMPLE:
        pick = rng.choice(len(data), _SILHOUETTE_SAMPLE, replace=False)
        data, labels = data[pick], labels[pick]
    clusters = np.unique(labels)
    if clusters.size < 2:
        return -1.0
    squared = (data**2).sum(axis=1)
    dist = np.sqrt(np.maximum(squared[:, None] + squared[None, :] - 2.0 * data @ data.T, 0.0))
    scores = np.zeros(len(data))
    for i in range(len(data)):
        own = labels == labels[i]
        if own.sum() <= 1:
            continue
        a = dist[i, own].sum() / (own.sum() - 1)
        b = min(dist[i, labels == c].mean() for c in clusters if c != labels[i])
        scores[i] = (b - a) / max(a, b, 1e-12)
    return float(scores.mean())


def _smooth(data: np.ndarray, labels: np.ndarray, switch_penalty: float) -> np.ndarray:
    """Viterbi over words: stay with a speaker unless the evidence outweighs a change penalty."""
    clusters = np.unique(labels)
    centres = np.array([data[labels == c].mean(axis=0) for c in clusters])
    cost = ((data[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    n, k = cost.shape
    total = cost[0].copy()
    back = np.zeros((n, k), dtype=int)
    for i in range(1, n):
        stay = total
        switch = total.min() + switch_penalty
        from_best = int(total.argmin())
        back[i] = np.where(stay <= switch, np.arange(k), from_best)
        total = np.minimum(stay, switch) + cost[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(total.argmin())
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return clusters[path]


def assign_speakers(
    audio: np.ndarray,
    sample_rate: int,
    words: list[Word],
    num_speakers: int | None = None,
    threshold: float | None = None,
) -> list[Word]:
    """Labels each word with the speaker who said it (``speaker_0``, ``speaker_1``...).

    Args:
        audio: The audio the words were transcribed from, mono or (frames, channels).
        sample_rate: Its sample rate in Hz.
        words: Words with times in seconds into ``audio``.
        num_speakers: How many speakers there are (1-32), or ``None`` to estimate it (up to 8).
        threshold: Like ElevenLabs' ``diarization_threshold`` (0.1-0.4, default 0.28), used only
            when ``num_speakers`` is not given: higher values need clearer differences between
            voices before adding a speaker, so they give fewer speakers.

    Returns:
        New :class:`Word` objects (the input is not modified) with ``speaker_id`` set; speakers
        are numbered in order of first appearance.

    Raises:
        ValueError: ``num_speakers`` or ``threshold`` out of range, or malformed audio.

    Example::

        labelled = assign_speakers(samples, 22050, transcription.words, num_speakers=2)
    """
    if num_speakers is not None and not 1 <= num_speakers <= MAX_SPEAKERS:
        raise ValueError(f"num_speakers must be between 1 and {MAX_SPEAKERS}, got {num_speakers}")
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (typically 0.1-0.4), got {threshold}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if not words:
        return []
    if num_speakers == 1 or len(words) < 2:
        return [dataclasses.replace(w, speaker_id="speaker_0") for w in words]

    data = _standardize(word_features(audio, sample_rate, words))
    rng = np.random.default_rng(_SEED)
    if num_speakers is not None:
        labels = _kmeans(data, min(num_speakers, len(words)), rng)
    else:
        labels = _estimate(data, rng, _DEFAULT_THRESHOLD if threshold is None else threshold)

    if np.unique(labels).size > 1:
        # A change of speaker must be worth about one word's typical distance to its own voice.
        centres = np.array([data[labels == c].mean(axis=0) for c in np.unique(labels)])
        own = ((data[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        labels = _smooth(data, labels, switch_penalty=2.0 * float(np.median(own)))

    names: dict[int, str] = {}
    result = []
    for word, label in zip(words, labels, strict=True):
        name = names.setdefault(int(label), f"speaker_{len(names)}")
        result.append(dataclasses.replace(word, speaker_id=name))
    return result


def _estimate(data: np.ndarray, rng: np.random.Generator, threshold: float) -> np.ndarray:
    # A speaker must hold a fair share of the words: on a few dozen words, k-means finds tight
    # little clusters of two or three words in a single voice, and their silhouette looks good.
    smallest = max(_MIN_SPEAKER_WORDS, math.ceil(_MIN_SPEAKER_SHARE * len(data)))
    best_score, best_labels = -math.inf, np.zeros(len(data), dtype=int)
    for k in range(2, min(_AUTO_MAX_SPEAKERS, len(data) // smallest) + 1):
        labels = _kmeans(data, k, rng)
        if np.bincount(labels, minlength=k).min() < smallest:
            continue
        score = _silhouette(data, labels, rng)
        if score > best_score:
            best_score, best_labels = score, labels
    if best_score < threshold:
        return np.zeros(len(data), dtype=int)
    return best_labels
