/**
 * `--publish-s3 s3://BUCKET/PREFIX`: the publication target for an S3-compatible bucket (server/publish.ts holds the
 * rules; this only stores objects). Keys are `PREFIX/checkpoint`, `PREFIX/tile/…`, so the bucket's URL plus the prefix
 * is a tlog-tiles log URL. Objects carry the tlog-tiles headers: Content-Type (text/plain for the checkpoint,
 * application/octet-stream for tiles and bundles) and Cache-Control (tiles immutable, the checkpoint `no-cache,
 * max-age=1`), which S3 and S3-compatible servers return on GET and CDNs in front of them honour.
 *
 * - A PUT is atomic (readers see the old object or the new one) and durable when it returns, so there is nothing to
 *   flush. A tile is PUT only when HEAD says it is absent, and with `If-None-Match: *` (S3 refuses to overwrite with
 *   412, which counts as "already there"; servers without conditional writes ignore the header, and then the HEAD is
 *   what keeps a full tile written once).
 * - The checkpoint is read back (GET) and compared by the publisher right before every replacement, and replaced by
 *   a conditional PUT (If-Match its ETag), so two publishers never move it back.
 * - Endpoint: AWS by default; `--s3-endpoint URL` (env PKGLOG_S3_ENDPOINT) for an S3-compatible server (MinIO, Ceph,
 *   s3rver, R2…), addressed path-style (`URL/BUCKET/KEY`). Credentials and region: the AWS SDK's standard chain
 *   (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE, instance roles…), region from
 *   AWS_REGION or AWS_DEFAULT_REGION (default us-east-1).
 * The SDK is loaded only when a bucket is configured.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { fail } from '../core/errors.ts';
import {
  CACHE_CHECKPOINT, CACHE_IMMUTABLE, CONTENT_TYPE_CHECKPOINT, CONTENT_TYPE_TILE, MAX_CHECKPOINT_OBJECT,
  type ObjectKind, type PublishTarget,
} from './publish.ts';

export interface S3Location {
  bucket: string;
  /** '' or a key prefix without leading or trailing '/'. */
  prefix: string;
}

/** s3://BUCKET[/PREFIX]: a DNS-style bucket name (3–63 of a-z 0-9 . -), a prefix of path segments (no '.', '..', ''). */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (m === null) fail('usage', `--publish-s3 ${JSON.stringify(url)}: want s3://BUCKET/PREFIX (bucket: 3-63 of a-z 0-9 . -)`);
  const prefix = (m[2] ?? '').replace(/\/+$/, '');
  if (prefix !== '') {
    for (const seg of prefix.split('/')) {
      if (seg === '' || seg === '.' || seg === '..' || /[\x00-\x1f\x7f\\]/.test(seg)) {
        fail('usage', `--publish-s3 ${JSON.stringify(url)}: the prefix must be path segments (no empty, '.', '..' or control characters)`);
      }
    }
  }
  return { bucket: m[1]!, prefix };
}

export interface S3TargetOptions extends S3Location {
  /** An S3-compatible server's URL (path-style); absent: AWS. */
  endpoint?: string;
  region: string;
  /** Explicit credentials (tests); absent: the SDK's standard chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

type Sdk = typeof import('@aws-sdk/client-s3');

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

export class S3Target implements PublishTarget {
  readonly name: string;
  private sdk: Sdk | undefined;
  private client: S3Client | undefined;
  /** The checkpoint last read and its ETag (the condition of the next replacement). */
  private lastRead: { bytes: Buffer | undefined; etag: string | undefined } | undefined;

  constructor(private readonly o: S3TargetOptions) {
    this.name = `s3://${o.bucket}${o.prefix === '' ? '' : '/' + o.prefix}`;
  }

  private key(path: string): string {
    return this.o.prefix === '' ? path : `${this.o.prefix}/${path}`;
  }

  where(path: string): string {
    return `s3://${this.o.bucket}/${this.key(path)}`;
  }

  async open(): Promise<void> {
    if (this.client !== undefined) return;
    // The SDK warns on stderr (several lines, outside the JSON log) that later versions need Node 22.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    this.sdk = await import('@aws-sdk/client-s3');
    this.client = new this.sdk.S3Client({
      region: this.o.region,
      ...(this.o.endpoint !== undefined ? { endpoint: this.o.endpoint, forcePathStyle: true } : {}),
      ...(this.o.credentials !== undefined ? { credentials: this.o.credentials } : {}),
      requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
      maxAttempts: 3,
    });
  }

  private get c(): { client: S3Client; sdk: Sdk } {
    if (this.client === undefined || this.sdk === undefined) fail('internal', `${this.name} is not open`);
    return { client: this.client, sdk: this.sdk };
  }

  async readCheckpoint(): Promise<Buffer | undefined> {
    const { client, sdk } = this.c;
    let r;
    try {
      r = await client.send(new sdk.GetObjectCommand({ Bucket: this.o.bucket, Key: this.key('checkpoint') }));
    } catch (e) {
      if (status(e) === 404) {
        this.lastRead = { bytes: undefined, etag: undefined };
        return undefined;
      }
      throw e;
    }
    if ((r.ContentLength ?? 0) > MAX_CHECKPOINT_OBJECT) {
      r.Body?.transformToWebStream().cancel().catch(() => {});
      fail('unsafe_state', `${this.where('checkpoint')} is larger than a checkpoint can be`);
    }
    const bytes = Buffer.from(await r.Body!.transformToByteArray());
    if (bytes.length > MAX_CHECKPOINT_OBJECT) fail('unsafe_state', `${this.where('checkpoint')} is larger than a checkpoint can be`);
    this.lastRead = { bytes, etag: r.ETag };
    return bytes;
  }

  async missing(path: string, _kind: ObjectKind): Promise<boolean> {
    const { client, sdk } = this.c;
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.o.bucket, Key: this.key(path) }));
      return false;
    } catch (e) {
      if (status(e) === 404) return true;
      throw e;
    }
  }

  async putOnce(path: string, data: Buffer, _kind: ObjectKind): Promise<number> {
    const { client, sdk } = this.c;
    try {
      await client.send(new sdk.PutObjectCommand({
        Bucket: this.o.bucket, Key: this.key(path), Body: data, IfNoneMatch: '*',
        ContentType: CONTENT_TYPE_TILE, CacheControl: CACHE_IMMUTABLE,
      }));
      return 1;
    } catch (e) {
      if (status(e) === 412) return 0; // it exists: never replaced
      throw e;
    }
  }

  async removePartials(path: string): Promise<number> {
    const { client, sdk } = this.c;
    let removed = 0;
    let token: string | undefined;
    do {
      const l = await client.send(new sdk.ListObjectsV2Command({
        Bucket: this.o.bucket, Prefix: this.key(path) + '/', ...(token !== undefined ? { ContinuationToken: token } : {}),
      }));
      const keys = (l.Contents ?? []).flatMap((x) => (x.Key === undefined ? [] : [{ Key: x.Key }]));
      if (keys.length > 0) {
        const d = await client.send(new sdk.DeleteObjectsCommand({ Bucket: this.o.bucket, Delete: { Objects: keys, Quiet: true } }));
        if (d.Errors !== undefined && d.Errors.length > 0) {
          const e = d.Errors[0]!;
          throw new Error(`deleting ${e.Key}: ${e.Code ?? ''} ${e.Message ?? ''}`.trim());
        }
        removed += keys.length;
      }
      token = l.IsTruncated === true ? l.NextContinuationToken : undefined;
    } while (token !== undefined);
    return removed;
  }

  async flush(): Promise<void> {}

  /**
   * A conditional PUT: `If-Match` the ETag the expected checkpoint was read with (`If-None-Match: *` when there was
   * none); S3 answers 412 when another process replaced it meanwhile ('conflict'). (A server without conditional
   * writes ignores the headers: then only the publisher's read-and-compare guards the replacement.)
   */
  async putCheckpoint(data: Buffer, expected: Buffer | undefined): Promise<void> {
    const { client, sdk } = this.c;
    const same = (a: Buffer | undefined, b: Buffer | undefined) => (a === undefined ? b === undefined : b !== undefined && a.equals(b));
    if (this.lastRead === undefined || !same(this.lastRead.bytes, expected)) {
      const now = await this.readCheckpoint();
      if (!same(now, expected)) fail('conflict', `${this.where('checkpoint')} was replaced by another process meanwhile`);
    }
    const etag = this.lastRead!.etag;
    this.lastRead = undefined;
    try {
      await client.send(new sdk.PutObjectCommand({
        Bucket: this.o.bucket, Key: this.key('checkpoint'), Body: data,
        ContentType: CONTENT_TYPE_CHECKPOINT, CacheControl: CACHE_CHECKPOINT,
        ...(expected === undefined ? { IfNoneMatch: '*' } : etag !== undefined ? { IfMatch: etag } : {}),
      }));
    } catch (e) {
      if (status(e) === 412 || status(e) === 409) fail('conflict', `${this.where('checkpoint')} was replaced by another process meanwhile`);
      throw e;
    }
  }

  async close(): Promise<void> {
    this.client?.destroy();
    this.client = undefined;
  }
}
