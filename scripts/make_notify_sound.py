"""Writes static/inbox/notify.wav, the inbox's notification chime (our own generated
sound, committed): two short sine tones fading out, 16 kHz mono, about 7 KB.

    python scripts/make_notify_sound.py
"""

import math
import struct
import wave
from pathlib import Path

RATE = 16000
TONES = ((880.0, 0.11), (1320.0, 0.16))  # hertz, seconds


def samples():
    for frequency, seconds in TONES:
        count = int(RATE * seconds)
        for n in range(count):
            fade = 1.0 - n / count
            yield int(12000 * fade * math.sin(2 * math.pi * frequency * n / RATE))


def main():
    path = Path(__file__).resolve().parents[1] / "static" / "inbox" / "notify.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples()))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
