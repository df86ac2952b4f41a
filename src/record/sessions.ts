// Live stream sessions: per connection id, start, messages, bytes, last activity. Bounded: idle
// sessions are evicted after a timeout, and past `maxSessions` the oldest is dropped; both counted.
import type { SeriesRecorder } from './recorder.js';
import type { Session } from '../core/types.js';
import { isCount } from '../core/validate.js';

export interface SessionInfo {
  connectionId: string;
  startedAt: number;
  ageMs: number;
  messages: number;
  bytes: number;
  lastActivity: number;
}

export interface SessionStats {
  /** Sessions tracked now. */
  active: number;
  /** Sessions opened since start (= active + closed). */
  opened: number;
  /** Sessions ended since start, however they ended (closed, failed, evicted, dropped, reopened). */
  closed: number;
  /** Sessions closed with an error type. */
  failed: number;
  /** Sessions ended after `sessionIdleTimeout` without a message. */
  evictedIdle: number;
  /** Sessions ended to stay within `maxSessions` (the oldest first). */
  droppedOverBound: number;
  /** The longest-lived sessions still open, oldest first. */
  longestLived: SessionInfo[];
}

class LiveSession implements Session {
  messages = 0;
  bytes = 0;
  lastActivity: number;
  closed = false;
  /** Ended by the tracker (idle, over the bound, or its connection id reopened), not by close(). */
  ended = false;
  /** close() was called. */
  userClosed = false;

  constructor(
    readonly connectionId: string,
    readonly startedAt: number,
    private readonly tracker: SessionTracker,
    readonly recorder: SeriesRecorder,
  ) {
    this.lastActivity = startedAt;
  }

  message(bytes = 0, direction: 'in' | 'out' = 'in'): void {
    if (!isCount(bytes) || (direction !== 'in' && direction !== 'out')) {
      // Rejected by the recorder (thrown, or counted as invalid): the session is left as it was.
      this.recorder.recordMessages(1, bytes, direction);
      return;
    }
    if (this.closed) {
      // A session the tracker ended (idle, over the bound) still carries real traffic: count the
      // message, but do not track the session again. After close() it is the caller's mistake.
      if (this.ended) return this.recorder.addMessages(1, bytes, direction);
      throw new Error(`session ${JSON.stringify(this.connectionId)} is closed`);
    }
    this.recorder.addMessages(1, bytes, direction);
    this.messages++;
    this.bytes += bytes;
    // The tracker's coarse time (updated each tick): no clock read per message.
    this.lastActivity = this.tracker.coarseNow;
  }

  close(errorType?: string): void {
    if (errorType !== undefined && (typeof errorType !== 'string' || errorType.length === 0)) {
      // Thrown; or, under invalidValues 'count', counted, and the session closed without it.
      this.recorder.invalid(
        new TypeError(
          `errorType must be a non-empty string when given (got ${typeof errorType === 'string' ? 'an empty string' : typeof errorType})`,
        ),
      );
      errorType = undefined;
    }
    // Ended by the tracker already (idle, over the bound): the failure still counts.
    if (this.ended && !this.userClosed && errorType !== undefined) {
      this.userClosed = true;
      this.tracker.failed++;
      this.recorder.recordError(errorType);
      return;
    }
    if (this.closed) return;
    this.userClosed = true;
    this.tracker.end(this, errorType);
  }
}

/** The session of an openSession() call whose arguments were counted as invalid: nothing through it is recorded. */
export const UNTRACKED_SESSION: Session = Object.freeze({ connectionId: '', message() {}, close() {} });

export class SessionTracker {
  private readonly live = new Map<string, LiveSession>();
  coarseNow: number;
  opened = 0;
  closed = 0;
  failed = 0;
  evictedIdle = 0;
  droppedOverBound = 0;

  constructor(
    private readonly now: () => number,
    private readonly idleTimeoutMs: number,
    private readonly maxSessions: number,
  ) {
    this.coarseNow = now();
  }

  open(connectionId: string, recorder: SeriesRecorder): Session {
    if (typeof connectionId !== 'string' || connectionId.length === 0) {
      // Thrown; or, under invalidValues 'count', counted, and a session that is not tracked returned.
      recorder.invalid(
        new TypeError(
          `connectionId must be a non-empty string (got ${typeof connectionId === 'string' ? 'an empty string' : typeof connectionId})`,
        ),
      );
      return UNTRACKED_SESSION;
    }
    const existing = this.live.get(connectionId);
    if (existing) {
      existing.ended = true;
      this.end(existing);
    }
    if (this.live.size >= this.maxSessions) {
      const oldest = this.live.values().next().value as LiveSession;
      this.droppedOverBound++;
      oldest.ended = true;
      this.end(oldest);
    }
    const now = this.now();
    // Opening reads the clock anyway: let it refresh the coarse time, so that activity is never
    // stamped earlier than the session's start.
    if (now > this.coarseNow) this.coarseNow = now;
    const s = new LiveSession(connectionId, now, this, recorder);
    this.live.set(connectionId, s);
    this.opened++;
    recorder.connectionOpened();
    return s;
  }

  end(s: LiveSession, errorType?: string): void {
    s.closed = true;
    this.live.delete(s.connectionId);
    this.closed++;
    s.recorder.recordSessionEnd(Math.max(0, this.now() - s.startedAt), s.messages, s.bytes);
    s.recorder.connectionClosed();
    if (errorType !== undefined) {
      this.failed++;
      s.recorder.recordError(errorType);
    }
  }

  /** At each tick: refresh the coarse time, evict idle sessions. */
  sweep(now: number): void {
    this.coarseNow = now;
    for (const s of this.live.values()) {
      if (now - s.lastActivity > this.idleTimeoutMs) {
        this.evictedIdle++;
        s.ended = true;
        this.end(s);
      }
    }
  }

  closeAll(): void {
    for (const s of [...this.live.values()]) {
      s.ended = true;
      this.end(s);
    }
  }

  stats(now: number, top = 5): SessionStats {
    // Insertion order is start order: the first entries are the longest-lived.
    const longestLived: SessionInfo[] = [];
    for (const s of this.live.values()) {
      if (longestLived.length >= top) break;
      longestLived.push({
        connectionId: s.connectionId,
        startedAt: s.startedAt,
        ageMs: now - s.startedAt,
        messages: s.messages,
        bytes: s.bytes,
        lastActivity: s.lastActivity,
      });
    }
    return {
      active: this.live.size,
      opened: this.opened,
      closed: this.closed,
      failed: this.failed,
      evictedIdle: this.evictedIdle,
      droppedOverBound: this.droppedOverBound,
      longestLived,
    };
  }
}
