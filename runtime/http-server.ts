/**
 * An HTTP server with the limits every pkglog service sets: headers and whole-request timeouts (408), an idle timeout,
 * a cap on open connections in total and per client address (more are dropped at once), and one log line for a
 * malformed request or a timeout (no stack), answered 400/408/431 and closed.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ServerLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
}

export function createLimitedServer(app: RequestListener, limits: ServerLimits, log: (msg: string) => void): Server {
  const server = createServer(
    {
      keepAliveTimeout: limits.idleTimeoutMs,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    app,
  );
  server.setTimeout(limits.idleTimeoutMs);
  server.maxConnections = limits.maxConnections;
  server.on('drop', (d?: { remoteAddress?: string }) => log(`refused a connection from ${d?.remoteAddress ?? 'unknown'}: ${limits.maxConnections} connections open`));
  const perClient = new Map<string, number>();
  server.on('connection', (socket) => {
    const ip = socket.remoteAddress ?? 'unknown';
    const n = (perClient.get(ip) ?? 0) + 1;
    if (n > limits.maxConnectionsPerClient) {
      log(`refused a connection from ${ip}: it already has ${n - 1} open (limit ${limits.maxConnectionsPerClient})`);
      socket.destroy();
      return;
    }
    perClient.set(ip, n);
    socket.once('close', () => {
      const left = (perClient.get(ip) ?? 1) - 1;
      if (left <= 0) perClient.delete(ip);
      else perClient.set(ip, left);
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, duplex) => {
    const socket = duplex as Socket;
    log(`refused a request from ${socket.remoteAddress ?? 'unknown'}: ${err.code ?? 'clientError'}: ${err.message}`);
    if (socket.writable && !socket.destroyed) {
      const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  });
  return server;
}
