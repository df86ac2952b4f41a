// The bytes of a text exposition, written as they are made.
//
// A scrape of 1,000 series is about 2.8 MB of text. Joined from strings, that is a new large string
// each scrape, whose fresh pages (and a second copy where the caller encodes it) cost on this
// host about as much as making the text. Here the text goes into a buffer kept from one render to
// the next (ASCII, the usual case, a byte per character with no encoder call) and becomes a string
// with one copy at the end.
import { keptBytes } from './slabs.js';

// Kept between renders up to this size; a larger render's buffer is let go, so that a rare large
// scrape (10,000 series: about 28 MB) does not hold its memory for the life of the process.
const KEEP_BYTES = 4 << 20;

export class TextWriter {
  private buf: Buffer = Buffer.allocUnsafeSlow(64 << 10);
  private pos = 0;
  private ascii = true;

  /** Appends `s`, UTF-8. */
  str(s: string): void {
    const n = s.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    const b = this.buf;
    let o = this.pos;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        // Rare (a label value or help text beyond ASCII): the rest of the string through the encoder.
        this.pos = o;
        this.utf8(s.slice(i));
        return;
      }
      b[o++] = c;
    }
    this.pos = o;
  }

  /**
   * Appends bytes encoded before (see asciiBytes): a label set or a name, the same on every line
   * that carries it. Long ones are one block copy; a few bytes are cheaper copied one by one.
   */
  bytes(u: Uint8Array): void {
    const n = u.length;
    if (this.pos + n > this.buf.length) this.grow(n);
    if (n > 12) {
      this.buf.set(u, this.pos);
      this.pos += n;
      return;
    }
    const b = this.buf;
    let o = this.pos;
    for (let i = 0; i < n; i++) b[o++] = u[i];
    this.pos = o;
  }

  /** Appends one ASCII character, by its code. */
  byte(c: number): void {
    if (this.pos >= this.buf.length) this.grow(1);
    this.buf[this.pos++] = c;
  }

  /** Appends `v` as `String(v)` spells it; integers (counts) without making a string. */
  num(v: number): void {
    if (!(v >= 0 && v < 1e15) || v !== Math.floor(v)) {
      this.str('' + v);
      return;
    }
    if (this.pos + 16 > this.buf.length) this.grow(16);
    const b = this.buf;
    if (v < 0x80000000) {
      // Counts fit 31 bits: int32 division by 10, which the compiler makes a multiplication.
      let digits = 1;
      for (let x = v | 0; x >= 10; x = (x / 10) | 0) digits++;
      let o = this.pos + digits;
      this.pos = o;
      let x = v | 0;
      do {
        const q = (x / 10) | 0;
        b[--o] = 48 + x - q * 10;
        x = q;
      } while (x > 0);
      return;
    }
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    let o = this.pos + digits;
    this.pos = o;
    let x = v;
    do {
      const q = Math.floor(x / 10);
      b[--o] = 48 + (x - q * 10);
      x = q;
    } while (x > 0);
  }

  /** The text written since the last call, as a string; the writer starts over empty. */
  take(): string {
    const b = this.buf;
    const text = b.toString(this.ascii ? 'latin1' : 'utf8', 0, this.pos);
    this.reset();
    return text;
  }

  /** The bytes written since the last call, a copy of their own; the writer starts over empty. */
  takeBytes(): Buffer {
    const bytes = Buffer.from(this.buf.subarray(0, this.pos));
    this.reset();
    return bytes;
  }

  /** Forgets what was written (a render that threw). */
  reset(): void {
    if (this.buf.length > KEEP_BYTES) this.buf = Buffer.allocUnsafeSlow(64 << 10);
    this.pos = 0;
    this.ascii = true;
  }

  private utf8(s: string): void {
    const most = s.length * 3;
    if (this.pos + most > this.buf.length) this.grow(most);
    this.pos += this.buf.write(s, this.pos, 'utf8');
    this.ascii = false;
  }

  private grow(need: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + need));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }
}

/** `s` as bytes to keep (for TextWriter.bytes), or undefined when it is not all ASCII. */
export function asciiBytes(s: string): Uint8Array | undefined {
  const n = s.length;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 128) return undefined;
  const out = keptBytes(n);
  for (let i = 0; i < n; i++) out[i] = s.charCodeAt(i);
  return out;
}
