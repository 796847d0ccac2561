/**
 * A voice-like test signal: a buzzy glottal source at a speaking pitch, shaped by three formant
 * resonators that glide from vowel to vowel at a syllable rate, in phrases with pauses. Nobody will
 * mistake it for speech, but it has speech's rhythm, pitch and spectrum, so Opus codes it like speech
 * and a listener hears at once when audio stops or skips. Deterministic for a given random source.
 */

/** Formant frequencies (Hz) of a few vowels, an adult speaker's. */
const VOWELS: [number, number, number][] = [
  [730, 1090, 2440], // a
  [530, 1840, 2480], // e
  [270, 2290, 3010], // i
  [570, 840, 2410], // o
  [300, 870, 2240], // u
];
const BANDWIDTHS = [80, 110, 160];

export class VoiceSignal {
  private n = 0;
  private phase = 0;
  private formants: [number, number, number];
  private target: [number, number, number];
  private syllableLeft = 0;
  private syllableLength = 1;
  private phraseLeft = 0;
  private pauseLeft = 0;
  private pitch = 1;
  private level = 0;
  private readonly y1 = [0, 0, 0];
  private readonly y2 = [0, 0, 0];

  constructor(
    private readonly random: () => number,
    readonly sampleRate = 48_000,
    /** Speaking pitch, Hz. */
    private readonly f0 = 120,
  ) {
    this.formants = [...VOWELS[0]!];
    this.target = [...VOWELS[0]!];
  }

  /** The next `count` samples, 16-bit. */
  next(count: number): Int16Array {
    const out = new Int16Array(count);
    const fs = this.sampleRate;
    for (let i = 0; i < count; i++, this.n++) {
      if (this.syllableLeft <= 0) this.nextSyllable();
      this.syllableLeft--;
      // glide formants toward the syllable's vowel, ~30 ms time constant
      const glide = 1 - Math.exp(-1 / (0.03 * fs));
      for (let k = 0; k < 3; k++) this.formants[k]! += (this.target[k]! - this.formants[k]!) * glide;
      const t = this.n / fs;
      const f = this.f0 * this.pitch * (1 + 0.08 * Math.sin(2 * Math.PI * 0.7 * t));
      this.phase += f / fs;
      // a glottal pulse once per period: a short decaying sawtooth, plus a breath of noise
      let x = 0;
      if (this.phase >= 1) this.phase -= 1;
      x = this.phase < 0.4 ? 1 - this.phase / 0.4 : 0;
      x = x - 0.3 + (this.random() - 0.5) * 0.08;
      const env = this.envelope();
      let y = x * env;
      for (let k = 0; k < 3; k++) {
        const r = Math.exp((-Math.PI * BANDWIDTHS[k]!) / fs);
        const theta = (2 * Math.PI * this.formants[k]!) / fs;
        const b1 = 2 * r * Math.cos(theta);
        const b2 = -r * r;
        // unity gain at the formant, so every vowel comes out about as loud
        const gain = (1 - r) * Math.sqrt(1 - 2 * r * Math.cos(2 * theta) + r * r);
        const yn = gain * y + b1 * this.y1[k]! + b2 * this.y2[k]!;
        this.y2[k] = this.y1[k]!;
        this.y1[k] = yn;
        y = yn;
      }
      // slow automatic gain: the cascade's loudness depends on the vowel; speech sits near −20 dBFS
      this.level += (Math.abs(y) - this.level) * 0.0005;
      const norm = y / Math.max(this.level, 1e-4);
      out[i] = Math.max(-32768, Math.min(32767, Math.round(norm * 2500 * env)));
    }
    return out;
  }

  private envelope(): number {
    if (this.pauseLeft > 0) return 0;
    const p = 1 - this.syllableLeft / this.syllableLength;
    return Math.sin(Math.PI * p) ** 0.6;
  }

  private nextSyllable(): void {
    const fs = this.sampleRate;
    if (this.pauseLeft > 0) this.pauseLeft = 0;
    if (this.phraseLeft <= 0) {
      // a phrase of 4–12 syllables, then a breath
      this.phraseLeft = 4 + Math.floor(this.random() * 9);
      this.pauseLeft = 1;
      this.syllableLength = this.syllableLeft = Math.round((0.25 + this.random() * 0.35) * fs);
      return;
    }
    this.phraseLeft--;
    this.syllableLength = this.syllableLeft = Math.round((0.14 + this.random() * 0.14) * fs);
    this.target = [...VOWELS[Math.floor(this.random() * VOWELS.length)]!];
    // intonation: up on stressed syllables, down toward the end of a phrase
    this.pitch = (0.9 + this.random() * 0.25) * (this.phraseLeft < 2 ? 0.9 : 1);
  }
}
