/**
 * A minimal HTTP/1.1 load generator over raw keep-alive sockets (node:net). Requests are pre-serialized bytes and
 * responses are framed by Content-Length only (express always sends one), so the client spends a few microseconds per
 * request and does not limit what it measures. The same generator drives the bare-handler baselines and the log.
 *
 *  - closedLoop: `concurrency` connections, each sends its next request as soon as the previous answer arrives; the
 *    rate counts the answers that arrive within the window (the run ends early if the requests run out).
 *  - openLoop: requests are sent on a fixed schedule (rate/s) whatever the server does; latency is measured from the
 *    scheduled send time, so a stalled server is charged for the requests it delays (no coordinated omission).
 */
import { connect, type Socket } from 'node:net';

export interface LoadResult {
  /** Completed requests (any status). */
  completed: number;
  /** Completed requests whose status was not 2xx, and connection errors. */
  errors: number;
  elapsedMs: number;
  /** Completed 2xx requests per second. */
  rate: number;
  /** Latencies in ms, of completed requests. */
  latencies: Float64Array;
  /** The first few non-2xx statuses with their bodies (diagnostics). */
  failures: string[];
  /** Bodies of the first `keepBodies` 2xx responses. */
  bodies: Buffer[];
}

export function target(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port) };
}

/** The bytes of one HTTP/1.1 request. */
export function httpRequest(method: 'GET' | 'POST', path: string, body?: Buffer | string): Buffer {
  if (body === undefined) return Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`, 'latin1');
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = `${method} ${path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), b]);
}

const CRLF2 = Buffer.from('\r\n\r\n', 'latin1');

/** One keep-alive connection with at most one request in flight. */
class Conn {
  private readonly sock: Socket;
  private head: Buffer | undefined;
  private remaining = -1; // body bytes still expected; -1 while reading the header
  private status = 0;
  private body: Buffer[] | undefined;
  private started = 0;
  private cb: ((status: number, started: number, body: Buffer | undefined) => void) | undefined;
  private wantBody = false;
  ready: Promise<void>;
  dead = false;

  constructor(host: string, port: number, onError: (e: Error) => void) {
    this.sock = connect({ host, port, noDelay: true });
    this.ready = new Promise((res, rej) => {
      this.sock.once('connect', () => res());
      this.sock.once('error', rej);
    });
    this.sock.on('error', (e) => {
      this.dead = true;
      onError(e);
    });
    this.sock.on('close', () => {
      this.dead = true;
      if (this.cb !== undefined) {
        const cb = this.cb;
        this.cb = undefined;
        cb(0, this.started, undefined);
      }
    });
    this.sock.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  send(req: Buffer, started: number, wantBody: boolean, cb: (status: number, started: number, body: Buffer | undefined) => void): void {
    this.cb = cb;
    this.started = started;
    this.wantBody = wantBody;
    this.sock.write(req);
  }

  private onData(chunk: Buffer): void {
    let c: Buffer = chunk;
    while (c.length > 0) {
      if (this.remaining < 0) {
        const buf = this.head === undefined ? c : Buffer.concat([this.head, c]);
        const end = buf.indexOf(CRLF2);
        if (end < 0) {
          this.head = buf;
          return;
        }
        this.head = undefined;
        const text = buf.toString('latin1', 0, end);
        this.status = Number(text.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        if (m === null) throw new Error(`response without Content-Length: ${text.slice(0, 200)}`);
        this.remaining = Number(m[1]);
        this.body = this.wantBody || this.status < 200 || this.status >= 300 ? [] : undefined;
        c = buf.subarray(end + 4);
      }
      const take = Math.min(this.remaining, c.length);
      if (this.body !== undefined && take > 0) this.body.push(c.subarray(0, take));
      this.remaining -= take;
      c = c.subarray(take);
      if (this.remaining === 0) {
        this.remaining = -1;
        const cb = this.cb!;
        this.cb = undefined;
        cb(this.status, this.started, this.body && Buffer.concat(this.body));
      }
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

interface Tally {
  completed: number;
  errors: number;
  lat: number[];
  failures: string[];
  bodies: Buffer[];
}

function record(t: Tally, status: number, started: number, body: Buffer | undefined, keepBodies: number): void {
  t.completed++;
  t.lat.push(performance.now() - started);
  if (status >= 200 && status < 300) {
    if (body !== undefined && t.bodies.length < keepBodies) t.bodies.push(body);
  } else {
    t.errors++;
    if (t.failures.length < 5) t.failures.push(`${status} ${body?.toString('utf8', 0, 300) ?? '(connection closed)'}`);
  }
}

function finish(t: Tally, elapsedMs: number): LoadResult {
  return {
    completed: t.completed, errors: t.errors, elapsedMs, rate: ((t.completed - t.errors) * 1000) / elapsedMs,
    latencies: Float64Array.from(t.lat), failures: t.failures, bodies: t.bodies,
  };
}

export interface ClosedLoopOptions {
  url: string;
  concurrency: number;
  /** The i-th request's bytes; undefined ends the run (when the requests run out). */
  request: (i: number) => Buffer | undefined;
  /** Stop sending after this long (ms). */
  durationMs: number;
  /** Requests sent (and not counted) before the clock starts, to warm up. */
  warmup?: number;
  /** Load runs this long (ms) before the window opens: answers in the ramp are not counted (a full pipeline). */
  rampMs?: number;
  keepBodies?: number;
}

/** Closed-loop load: `concurrency` requests in flight until durationMs or the requests run out. */
export async function closedLoop(o: ClosedLoopOptions): Promise<LoadResult> {
  const { host, port } = target(o.url);
  let connErrors = 0;
  const conns = Array.from({ length: o.concurrency }, () => new Conn(host, port, () => connErrors++));
  await Promise.all(conns.map((c) => c.ready));
  let next = 0;
  const warm = o.warmup ?? 0;
  if (warm > 0) {
    // Warm up with the first `warm` requests, all connections busy.
    await new Promise<void>((resolve) => {
      let done = 0;
      let inflight = 0;
      const go = (c: Conn) => {
        if (next >= warm) {
          if (inflight === 0) resolve();
          return;
        }
        const req = o.request(next++);
        if (req === undefined) return resolve();
        inflight++;
        c.send(req, performance.now(), false, () => {
          inflight--;
          done++;
          go(c);
        });
      };
      for (const c of conns) go(c);
    });
  }
  const t: Tally = { completed: 0, errors: 0, lat: [], failures: [], bodies: [] };
  const ramp = o.rampMs ?? 0;
  const start = performance.now() + ramp;
  const stopAt = start + o.durationMs;
  let end = start;
  await new Promise<void>((resolve) => {
    let inflight = 0;
    let stopped = false;
    const go = (c: Conn) => {
      const now = performance.now();
      const req = stopped || now >= stopAt || c.dead ? undefined : o.request(next);
      if (req === undefined) {
        stopped = true;
        if (inflight === 0) {
          end = performance.now();
          resolve();
        }
        return;
      }
      next++;
      inflight++;
      c.send(req, now, (o.keepBodies ?? 0) > t.bodies.length, (status, started, body) => {
        inflight--;
        // Only answers that arrive inside the window count (the drain after it would understate a steady rate).
        const at = performance.now();
        if (at <= stopAt && at >= start) record(t, status, started, body, o.keepBodies ?? 0);
        else if (status < 200 || status >= 300) record(t, status, started, body, 0);
        go(c);
      });
    };
    for (const c of conns) go(c);
  });
  for (const c of conns) c.close();
  t.errors += connErrors;
  return finish(t, Math.min(end, stopAt) - start);
}

export interface OpenLoopOptions {
  url: string;
  /** Requests per second, sent on a fixed schedule. */
  rate: number;
  durationMs: number;
  request: (i: number) => Buffer;
  /** Connections opened up front (more are opened if all are busy). */
  connections?: number;
}

/** Open-loop load at a fixed rate; latency counts from each request's scheduled time. */
export async function openLoop(o: OpenLoopOptions): Promise<LoadResult & { sent: number; maxInflight: number }> {
  const { host, port } = target(o.url);
  let connErrors = 0;
  const idle: Conn[] = Array.from({ length: o.connections ?? 64 }, () => new Conn(host, port, () => connErrors++));
  await Promise.all(idle.map((c) => c.ready));
  const t: Tally = { completed: 0, errors: 0, lat: [], failures: [], bodies: [] };
  const total = Math.round((o.rate * o.durationMs) / 1000);
  const interval = 1000 / o.rate;
  let sent = 0;
  let inflight = 0;
  let maxInflight = 0;
  const start = performance.now();
  let end = start;
  await new Promise<void>((resolve) => {
    const all: Conn[] = [...idle];
    const fire = (scheduled: number) => {
      const c = idle.pop() ?? (() => {
        const n = new Conn(host, port, () => connErrors++);
        all.push(n);
        return n;
      })();
      const req = o.request(sent++);
      inflight++;
      maxInflight = Math.max(maxInflight, inflight);
      const go = () => c.send(req, scheduled, false, (status, started, body) => {
        inflight--;
        record(t, status, started, body, 0);
        if (!c.dead) idle.push(c);
        if (sent >= total && inflight === 0) {
          end = performance.now();
          for (const x of all) x.close();
          resolve();
        }
      });
      // A fresh connection must finish connecting first (still charged from the schedule).
      c.ready.then(go, () => {
        inflight--;
        record(t, 0, scheduled, undefined, 0);
      });
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) fire(start + sent * interval);
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
  t.errors += connErrors;
  return { ...finish(t, end - start), sent, maxInflight };
}

export function percentile(lat: Float64Array, p: number): number {
  if (lat.length === 0) return NaN;
  const s = Float64Array.from(lat).sort();
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
