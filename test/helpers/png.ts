/**
 * A tiny PNG decoder for tests (PNG spec, ISO/IEC 15948: signature, IHDR, IDAT zlib stream,
 * per-row filters 0–4 with the Paeth predictor, IEND): 8-bit greyscale, RGB and RGBA,
 * non-interlaced — what headless Chromium's `--screenshot` writes. Anything else throws.
 */
import { inflateSync } from 'node:zlib';

export interface DecodedPng {
  readonly width: number;
  readonly height: number;
  /** RGBA, 4 bytes per pixel, row-major. */
  readonly rgba: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function decodePng(buf: Uint8Array): DecodedPng {
  if (buf.length < 8 || SIGNATURE.some((b, i) => buf[i] !== b)) throw new Error('not a PNG');
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = -1;
  const idat: Uint8Array[] = [];
  for (;;) {
    if (off + 8 > buf.length) throw new Error('truncated PNG');
    const len = dv.getUint32(off);
    const type = String.fromCharCode(...buf.subarray(off + 4, off + 8));
    const data = buf.subarray(off + 8, off + 8 + len);
    if (data.length !== len) throw new Error('truncated chunk');
    off += 12 + len;
    if (type === 'IHDR') {
      width = dv.getUint32(off - 12 - len + 8);
      height = dv.getUint32(off - 12 - len + 12);
      const depth = data[8]!;
      colorType = data[9]!;
      const interlace = data[12]!;
      if (depth !== 8 || ![0, 2, 6].includes(colorType) || interlace !== 0) throw new Error(`unsupported PNG (depth ${depth}, colour type ${colorType}, interlace ${interlace})`);
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
  }
  if (width === 0 || height === 0) throw new Error('PNG without IHDR');
  const bpp = colorType === 6 ? 4 : colorType === 2 ? 3 : 1;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  if (raw.length !== height * (stride + 1)) throw new Error('PNG data length mismatch');
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : undefined;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? row[x - bpp]! : 0;
      const b = prev?.[x] ?? 0;
      const c = x >= bpp && prev !== undefined ? prev[x - bpp]! : 0;
      const v = src[x]!;
      switch (filter) {
        case 0: row[x] = v; break;
        case 1: row[x] = (v + a) & 0xff; break;
        case 2: row[x] = (v + b) & 0xff; break;
        case 3: row[x] = (v + ((a + b) >> 1)) & 0xff; break;
        case 4: row[x] = (v + paeth(a, b, c)) & 0xff; break;
        default: throw new Error(`bad PNG filter ${filter}`);
      }
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    if (bpp === 1) {
      rgba.set([px[i]!, px[i]!, px[i]!, 255], i * 4);
    } else {
      rgba[i * 4] = px[i * bpp]!;
      rgba[i * 4 + 1] = px[i * bpp + 1]!;
      rgba[i * 4 + 2] = px[i * bpp + 2]!;
      rgba[i * 4 + 3] = bpp === 4 ? px[i * bpp + 3]! : 255;
    }
  }
  return { width, height, rgba };
}

/** Number of pixels within `tolerance` (per channel) of the colour `#rrggbb`. */
export function countColor(img: DecodedPng, hex: string, tolerance = 12): number {
  const r = parseInt(hex.slice(1, 3), 16);
  const g = parseInt(hex.slice(3, 5), 16);
  const b = parseInt(hex.slice(5, 7), 16);
  let n = 0;
  for (let i = 0; i < img.rgba.length; i += 4) {
    if (Math.abs(img.rgba[i]! - r) <= tolerance && Math.abs(img.rgba[i + 1]! - g) <= tolerance && Math.abs(img.rgba[i + 2]! - b) <= tolerance) n++;
  }
  return n;
}
