"""Recorded prompts: every fixed prompt rendered to WAV (8 kHz, 16-bit mono,
as telephone platforms play them) in both languages with espeak-ng, so that a
platform without text-to-speech can ``<Play>`` them."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from array import array
from pathlib import Path

from yibao.services.inquiry.dialog import LANGS, PROMPTS

RATE = 8000
VOICES = {"zh": "cmn", "en": "en-us"}


class NoSpeechEngine(RuntimeError):
    pass


def espeak() -> str:
    found = shutil.which("espeak-ng")
    if not found:
        raise NoSpeechEngine(
            "espeak-ng is not installed (Debian package espeak-ng; `make system-deps` as root)"
        )
    return found


def resample(samples: array[int], src: int, dst: int = RATE) -> array[int]:
    """Down-sample 16-bit audio by averaging each output sample's window (a
    box low-pass filter): plenty for speech on a telephone line."""
    if src == dst:
        return array("h", samples)
    ratio = src / dst
    half = max(ratio / 2, 0.5)
    out = array("h")
    for i in range(int(len(samples) / ratio)):
        centre = i * ratio
        lo = max(0, int(centre - half))
        hi = min(len(samples), int(centre + half) + 1)
        window = samples[lo:hi]
        out.append(int(sum(window) / len(window)))
    return out


def synthesize(text: str, lang: str, target: Path) -> Path:
    """Speak ``text`` into ``target`` as 8 kHz mono 16-bit WAV."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(  # noqa: S603 - a fixed program, the text as one argument
            [espeak(), "-v", VOICES[lang], "-s", "150", "-w", str(raw), text],
            check=True,
            capture_output=True,
        )
        with wave.open(str(raw), "rb") as src:
            width, channels, rate = src.getsampwidth(), src.getnchannels(), src.getframerate()
            frames = src.readframes(src.getnframes())
    if width != 2:
        raise NoSpeechEngine(f"espeak-ng gave {8 * width}-bit audio; 16-bit expected")
    samples = array("h", frames)
    if channels > 1:
        samples = samples[::channels]
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(resample(samples, rate).tobytes())
    return target


def render_prompts(out_dir: Path) -> list[Path]:
    """Every fixed prompt in both languages: ``out_dir/{zh,en}/{key}.wav``."""
    espeak()
    made = []
    for key, texts in PROMPTS.items():
        for lang, text in zip(LANGS, texts, strict=True):
            made.append(synthesize(text, lang, out_dir / lang / f"{key}.wav"))
    return made
