/**
 * An S3-compatible server for the --publish-s3 tests: s3rver (devDependency; an S3 API over a local directory) in this
 * process on 127.0.0.1, port 0, with one bucket. Its GETs need no credentials, so `url/bucket/prefix` is a
 * tlog-tiles log URL that pkglog's clients and the independent reader read like any static origin. Every object
 * PUT is recorded (s3rver's S3 event notifications), so a test can tell how often a key was written.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  on(event: 'event', f: (e: { Records: Array<{ eventName: string; s3: { bucket: { name: string }; object: { key: string; size?: number } } }> }) => void): void;
}
type S3rverClass = new (o: Record<string, unknown>) => S3rverInstance;

export const S3RVER_VERSION: string = (createRequire(import.meta.url)('s3rver/package.json') as { version: string }).version;
/** s3rver's fixed credentials. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

export interface RunningS3 {
  /** http://127.0.0.1:PORT (the --s3-endpoint). */
  endpoint: string;
  bucket: string;
  /** The key of every object PUT, in order. */
  puts: string[];
  /** Environment for a `pkglog serve --publish-s3` child: credentials and region. */
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export async function startS3(bucket = 'pkglog-test'): Promise<RunningS3> {
  // The SDK's multi-line 'later versions need Node 22' warning, in this (test) process.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const dir = mkdtempSync(join(tmpdir(), 'pkglog-s3rver-'));
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: bucket }] });
  const puts: string[] = [];
  server.on('event', (e) => {
    for (const r of e.Records) if (r.s3.bucket.name === bucket && r.eventName.startsWith('ObjectCreated:')) puts.push(r.s3.object.key);
  });
  const addr = await server.run();
  return {
    endpoint: `http://127.0.0.1:${addr.port}`,
    bucket,
    puts,
    env: {
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    async stop() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
