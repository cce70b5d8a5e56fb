/** The log's configuration: flags over environment variables over defaults. */
import { join, resolve } from 'node:path';
import { fail } from '../core/errors.ts';
import { parseDecimal } from '../core/encoding.ts';
import { parseListen } from '../runtime/listen.ts';
import { defaultVerifyThreads } from './verify-pool.ts';
import { parseS3Url } from './publish-s3.ts';

export interface LogConfig {
  dataDir: string;
  host: string;
  port: number;
  origin?: string;
  keyFile: string;
  /** The log's ML-DSA-44 key file (its own subtree/v1 cosignature on every checkpoint); undefined: off. */
  mldsaKeyFile?: string;
  batchIntervalMs: number;
  maxBatch: number;
  maxPending: number;
  /** Cosignatures a checkpoint needs before it is published (0: publish at once). */
  witnessQuorum: number;
  /** At least this long between two add-checkpoint requests to one witness. */
  witnessIntervalMs: number;
  /** With a quorum, how long a submission reply waits for a cosigned checkpoint. */
  witnessWaitMs: number;
  /** Worker threads verifying submission signatures (0: on the event loop). */
  verifyThreads: number;
  /** A client must send its request headers within this time, and the whole request within requestTimeoutMs (408). */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Open connections in total, and from one remote address. */
  maxConnections: number;
  maxConnectionsPerClient: number;
  /** Publish the tlog-tiles layout into this directory after each commit (server/publish.ts). */
  publishDir?: string;
  /** Keep the verifiable package index and its output log (server/indexer.ts, docs/index-format.md). */
  index: boolean;
  /** Also publish it into this S3-compatible bucket (server/publish-s3.ts). */
  publishS3?: { url: string; endpoint?: string; region: string };
  /** A postgres:// URL: the store is that PostgreSQL database (log-store/postgres.ts); absent: SQLite in dataDir. */
  database?: string;
  /** Several front ends on one PostgreSQL database (docs/operations.md#scaling-out): the sequencer lease's lifetime, and how long a submission waits to be committed. */
  leaseTtlMs: number;
  commitWaitMs: number;
}

export const DEFAULT_LISTEN = '127.0.0.1:8080';

export interface ConfigInput {
  dataDir?: string;
  listen?: string;
  origin?: string;
  keyFile?: string;
  /** 'on' (default) or 'off': also sign checkpoints with the log's ML-DSA-44 key. */
  mldsa?: string;
  mldsaKeyFile?: string;
  batchInterval?: string;
  maxBatch?: string;
  maxPending?: string;
  witnessQuorum?: string;
  witnessInterval?: string;
  witnessWait?: string;
  verifyThreads?: string;
  headersTimeout?: string;
  requestTimeout?: string;
  maxConnections?: string;
  maxConnectionsPerClient?: string;
  publishDir?: string;
  index?: boolean;
  publishS3?: string;
  s3Endpoint?: string;
  database?: string;
  leaseTtl?: string;
  commitWait?: string;
}

export function resolveConfig(flags: ConfigInput, env: NodeJS.ProcessEnv = process.env): LogConfig {
  const dataDir = resolve(flags.dataDir ?? env.PKGLOG_DATA_DIR ?? './data');
  const { host, port } = parseListen(flags.listen ?? env.PKGLOG_LISTEN ?? DEFAULT_LISTEN);
  const origin = flags.origin ?? env.PKGLOG_ORIGIN;
  const publishDir = flags.publishDir ?? env.PKGLOG_PUBLISH_DIR;
  const publishS3 = flags.publishS3 ?? env.PKGLOG_PUBLISH_S3;
  const s3Endpoint = flags.s3Endpoint ?? env.PKGLOG_S3_ENDPOINT;
  if (publishS3 !== undefined && publishS3 !== '') parseS3Url(publishS3);
  if (s3Endpoint !== undefined && s3Endpoint !== '' && !/^https?:\/\/[^/?#\s]+\/?$/.test(s3Endpoint)) {
    fail('usage', `--s3-endpoint ${JSON.stringify(s3Endpoint)}: want http(s)://HOST[:PORT]`);
  }
  const mldsa = flags.mldsa ?? env.PKGLOG_MLDSA ?? 'on';
  if (mldsa !== 'on' && mldsa !== 'off') fail('usage', `--mldsa must be on or off, not ${JSON.stringify(mldsa)}`);
  const database = resolveDatabase(flags.database, env);
  const index = flags.index ?? (env.PKGLOG_INDEX !== undefined && env.PKGLOG_INDEX !== '' && env.PKGLOG_INDEX !== '0');
  if (database !== undefined && index) {
    fail('usage', '--index keeps the package index in the SQLite database; it cannot be combined with --database (PostgreSQL) yet');
  }
  return {
    ...(database !== undefined ? { database } : {}),
    dataDir,
    host,
    port,
    ...(origin !== undefined && origin !== '' ? { origin } : {}),
    ...(publishDir !== undefined && publishDir !== '' ? { publishDir: resolve(publishDir) } : {}),
    index,
    ...(publishS3 !== undefined && publishS3 !== '' ? {
      publishS3: {
        url: publishS3, region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
        ...(s3Endpoint !== undefined && s3Endpoint !== '' ? { endpoint: s3Endpoint.replace(/\/$/, '') } : {}),
      },
    } : {}),
    keyFile: resolve(flags.keyFile ?? env.PKGLOG_KEY_FILE ?? join(dataDir, 'log.key')),
    ...(mldsa === 'on' ? { mldsaKeyFile: resolve(flags.mldsaKeyFile ?? env.PKGLOG_MLDSA_KEY_FILE ?? join(dataDir, 'log-mldsa.key')) } : {}),
    batchIntervalMs: parseDecimal(flags.batchInterval ?? env.PKGLOG_BATCH_INTERVAL_MS ?? '100', 'batch interval', 60_000),
    maxBatch: Math.max(1, parseDecimal(flags.maxBatch ?? '1000', 'max batch', 100_000)),
    maxPending: Math.max(1, parseDecimal(flags.maxPending ?? env.PKGLOG_MAX_PENDING ?? '20000', 'max pending', 10_000_000)),
    witnessQuorum: parseDecimal(flags.witnessQuorum ?? env.PKGLOG_WITNESS_QUORUM ?? '0', 'witness quorum', 64),
    witnessIntervalMs: parseDecimal(flags.witnessInterval ?? env.PKGLOG_WITNESS_INTERVAL_MS ?? '1000', 'witness interval', 3_600_000),
    verifyThreads: parseDecimal(flags.verifyThreads ?? env.PKGLOG_VERIFY_THREADS ?? String(defaultVerifyThreads()), 'verify threads', 64),
    witnessWaitMs: parseDecimal(flags.witnessWait ?? env.PKGLOG_WITNESS_WAIT_MS ?? '10000', 'witness wait', 600_000),
    headersTimeoutMs: Math.max(1, parseDecimal(flags.headersTimeout ?? env.PKGLOG_HEADERS_TIMEOUT_MS ?? '10000', 'headers timeout', 600_000)),
    requestTimeoutMs: Math.max(1, parseDecimal(flags.requestTimeout ?? env.PKGLOG_REQUEST_TIMEOUT_MS ?? '30000', 'request timeout', 3_600_000)),
    maxConnections: Math.max(1, parseDecimal(flags.maxConnections ?? env.PKGLOG_MAX_CONNECTIONS ?? '1000', 'max connections', 1_000_000)),
    maxConnectionsPerClient: Math.max(1, parseDecimal(flags.maxConnectionsPerClient ?? env.PKGLOG_MAX_CONNECTIONS_PER_CLIENT ?? '100', 'max connections per client', 1_000_000)),
    leaseTtlMs: Math.max(100, parseDecimal(flags.leaseTtl ?? env.PKGLOG_LEASE_TTL_MS ?? '3000', 'lease TTL', 600_000)),
    commitWaitMs: Math.max(1, parseDecimal(flags.commitWait ?? env.PKGLOG_COMMIT_WAIT_MS ?? '10000', 'commit wait', 600_000)),
  };
}

/** --database or PKGLOG_DATABASE_URL: a postgres:// (or postgresql://) URL, or undefined for SQLite. */
export function resolveDatabase(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = flag ?? env.PKGLOG_DATABASE_URL;
  if (url === undefined || url === '') return undefined;
  if (!/^postgres(ql)?:\/\/./i.test(url)) {
    fail('usage', `--database must be a postgres:// URL (PostgreSQL); without it the log uses SQLite in its data directory`);
  }
  return url;
}
