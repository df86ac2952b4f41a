// Argument checks for the record path: cheap comparisons that also reject NaN and non-numbers,
// with messages that name the argument. The throwing parts live out of line so the checks inline.
import { describe, MAX_MS } from './config.js';

/** Largest count or byte figure accepted (exact in f64). */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

export function invalid(name: string, value: unknown, what: string): Error {
  const E = typeof value === 'number' ? RangeError : TypeError;
  return new E(`${name} must be ${what} (got ${describe(value)})`);
}

// The two record fast paths (monitor.ts, record/recorder.ts) write this check out with MAX_MS as a
// literal: an imported function or constant is reloaded and checked on every call (~8 % of a record).
export function isMs(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= MAX_MS;
}

export function isCount(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= MAX_COUNT && Math.floor(v) === v;
}

export function isRatio(v: unknown): v is number {
  return typeof v === 'number' && v >= 0 && v <= 1;
}

export const MS = `a finite number of milliseconds from 0 to ${MAX_MS}`;
export const COUNT = `a whole number from 0 to ${MAX_COUNT} (2^53 − 1)`;
export const RATIO = 'a number from 0 to 1';
