"""Speech from the eSpeak NG synthesiser that the ``espeakng-loader`` wheel bundles, placed
among silence and noise; the ground truth is where each utterance was placed.

The library and its voice data come inside the wheel (no system packages, no network) and
are driven through ctypes: ``espeak_Initialize`` in synchronous mode, a callback that
collects the 16-bit samples, ``espeak_Synth`` on UTF-8 text. eSpeak speaks at 22.05 kHz;
the audio is resampled to Silero's 16 kHz in the frequency domain.
"""

from __future__ import annotations

import ctypes
import functools
from dataclasses import dataclass

import numpy as np

from compiler.shipped_models import SR, package_folder

PACKAGE, PIP = "espeakng_loader", "espeakng-loader"
SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "Please compile the model before you run it on the board.",
    "Turn left at the next corner and walk for two minutes.",
    "The weather will be cloudy in the morning and clear at night.",
    "Seven hundred and twenty samples arrived at the station today.",
    "Could you send me the report by Friday afternoon?",
    "Quantised networks run faster on small chips.",
    "We measured the latency three times on a quiet machine.",
)
VOICES = ("en", "en-us", "en-gb-x-rp", "en+f3", "en+m3")
_SYNCHRONOUS, _CHARS_UTF8 = 2, 1
_RATE, _PITCH = 1, 3
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


def available() -> bool:
    folder = package_folder(PACKAGE)
    return folder is not None and (folder / "espeak-ng-data").is_dir()


@dataclass
class _Engine:
    lib: ctypes.CDLL
    rate: int
    chunks: list[np.ndarray]
    callback: object  # kept alive: the library holds a pointer to it


@functools.lru_cache(maxsize=1)
def _engine() -> _Engine:
    folder = package_folder(PACKAGE)
    if folder is None:
        raise FileNotFoundError(f"eSpeak NG is not installed: pip install {PIP}")
    lib = ctypes.CDLL(str(folder / "libespeak-ng.so"))
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                 ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, str(folder / "espeak-ng-data").encode(), 0)
    if rate <= 0:
        raise RuntimeError(f"espeak_Initialize failed ({rate})")
    chunks: list[np.ndarray] = []

    def collect(wav, n, _events):  # type: ignore[no-untyped-def]
        if wav and n > 0:
            chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        return 0

    cb = _CALLBACK(collect)
    lib.espeak_SetSynthCallback(cb)
    return _Engine(lib, rate, chunks, cb)


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """``x`` at ``src`` Hz as ``dst`` Hz: its spectrum cut (or zero-extended) to the new
    length's band, so nothing above the lower Nyquist frequency folds back."""
    n = int(round(len(x) * dst / src))
    spec = np.fft.rfft(x)
    keep = n // 2 + 1
    out_spec = np.zeros(keep, complex)
    m = min(keep, len(spec))
    out_spec[:m] = spec[:m]
    return (np.fft.irfft(out_spec, n) * (n / len(x))).astype(np.float32)


def synthesise(text: str, voice: str = "en", rate_wpm: int = 160, pitch: int = 50,
               ) -> np.ndarray:
    """``text`` spoken, as 16 kHz f32 audio in [-1, 1] with eSpeak's own leading and
    trailing silence cut off. Not bit-reproducible: eSpeak NG carries synthesis state from
    one call to the next (the same text comes out a few samples longer or shorter, whatever
    its random seed), and seeds its noise from the clock."""
    eng = _engine()
    if eng.lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise ValueError(f"eSpeak NG has no voice {voice!r}")
    eng.lib.espeak_SetParameter(_RATE, rate_wpm, 0)
    eng.lib.espeak_SetParameter(_PITCH, pitch, 0)
    eng.chunks.clear()
    data = text.encode()
    err = eng.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, _CHARS_UTF8, None, None)
    if err != 0 or not eng.chunks:
        raise RuntimeError(f"espeak_Synth failed ({err})")
    audio = resample(np.concatenate(eng.chunks).astype(np.float32) / 32768.0, eng.rate, SR)
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    return audio[loud[0]:loud[-1] + 1] if len(loud) else audio[:0]


@dataclass(frozen=True)
class Utterance:
    """16 kHz audio and the sample ranges [start, end) where speech was placed."""

    audio: np.ndarray
    speech: list[tuple[int, int]]


def utterance(seconds: float, seed: int = 0, snr_db: float = 20.0, n_speech: int = 2,
              ) -> Utterance:
    """``n_speech`` spoken sentences (random voice, rate and pitch) in ``seconds`` of
    audio, with silence between them and noise throughout: white noise at ``snr_db`` below
    the speech power, plus a low hum and, in a silent stretch, a short click burst."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    parts = []
    for _ in range(n_speech):
        s = SENTENCES[int(rng.integers(0, len(SENTENCES)))]
        v = VOICES[int(rng.integers(0, len(VOICES)))]
        a = synthesise(s, v, int(rng.integers(140, 200)), int(rng.integers(30, 70)))
        parts.append(a * rng.uniform(0.3, 0.9) / max(float(np.abs(a).max()), 1e-6))
    room = n - sum(len(p) for p in parts)
    if room < SR // 4 * (n_speech + 1):
        raise ValueError(f"{seconds} s is too short for {n_speech} sentences")
    gaps = rng.dirichlet(np.ones(n_speech + 1)) * room
    audio = np.zeros(n, np.float32)
    speech, pos = [], 0
    for gap, p in zip(gaps, parts):
        pos += int(gap)
        audio[pos:pos + len(p)] += p
        speech.append((pos, pos + len(p)))
        pos += len(p)
    power = float(np.mean(np.concatenate(parts) ** 2))
    t = np.arange(n) / SR
    audio += rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), n).astype(np.float32)
    audio += (0.003 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    first_gap = speech[0][0]
    if first_gap > SR // 5:  # clicks in the leading silence: loud but not speech
        at = int(rng.integers(0, first_gap - SR // 10))
        clicks = np.zeros(SR // 10, np.float32)
        clicks[:: SR // 50] = 0.3
        audio[at:at + len(clicks)] += clicks
    return Utterance(np.clip(audio, -1, 1).astype(np.float32), speech)
