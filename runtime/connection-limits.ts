/**
 * Connection limits of the log's and the mirror's HTTP servers: slow headers and slow bodies time out (Node answers 408 and closes),
 * at most `maxConnections` sockets in total (Node drops the ones above) and at most `maxConnectionsPerClient` from one
 * remote address. A client at its cap that opens another connection first loses one of its own idle keep-alive
 * connections (a leaky connection pool keeps working); with none idle, the new connection is closed at once.
 * Refused connections are logged as one summary line per second at most.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { Socket } from 'node:net';

export interface ConnectionLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  maxConnections: number;
  maxConnectionsPerClient: number;
}

export function createLimitedServer(app: RequestListener, limits: ConnectionLimits, log?: (msg: string) => void): Server {
  const server = createServer({
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // How often Node checks the two timeouts (its default, 30 s, would let a slow client overstay by that much).
    connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4) || 1000)),
  }, app);
  server.maxConnections = limits.maxConnections;
  server.keepAliveTimeout = 65_000;

  let refusedTotal = 0;
  let refusedPerClient = 0;
  let timer: NodeJS.Timeout | undefined;
  const refused = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      log?.(`refused connections in the last second: ${refusedPerClient} over the per-client cap of ${limits.maxConnectionsPerClient}, ${refusedTotal} over the total cap of ${limits.maxConnections}`);
      refusedTotal = refusedPerClient = 0;
    }, 1000).unref();
  };
  server.on('drop', () => {
    refusedTotal++;
    refused();
  });

  // Per client: its open sockets, and those idle between keep-alive requests (answered, no request in progress).
  const perClient = new Map<string, { open: number; idle: Set<Socket> }>();
  server.on('connection', (socket: Socket) => {
    const key = socket.remoteAddress ?? '?';
    let client = perClient.get(key);
    if (client === undefined) perClient.set(key, (client = { open: 0, idle: new Set() }));
    if (client.open >= limits.maxConnectionsPerClient) {
      const idle = client.idle.values().next();
      if (idle.done) {
        refusedPerClient++;
        refused();
        socket.destroy();
        return;
      }
      client.idle.delete(idle.value);
      idle.value.destroy();
    }
    client.open++;
    const c = client;
    socket.once('close', () => {
      c.idle.delete(socket);
      if (--c.open <= 0 && perClient.get(key) === c) perClient.delete(key);
    });
  });
  server.on('request', (req, res) => {
    const c = perClient.get(req.socket.remoteAddress ?? '?');
    c?.idle.delete(req.socket);
    res.once('finish', () => {
      if (!req.socket.destroyed && perClient.get(req.socket.remoteAddress ?? '?') === c) c?.idle.add(req.socket);
    });
  });
  server.on('close', () => clearTimeout(timer));
  return server;
}
