/** Test helpers: deterministic publisher/registry keys and signed submissions. */
import { createHash } from 'node:crypto';
import { keyPairFromSeed, ed25519Sign, type Ed25519KeyPair } from '../../core/ed25519.ts';
import { formatSubmission, publisherMessage, registryMessage, type Artifact, type Submission } from '../../core/entry.ts';

export function seedOf(label: string): Buffer {
  return createHash('sha256').update(label).digest();
}

export function keyPair(label: string): Ed25519KeyPair {
  return keyPairFromSeed(seedOf(label));
}

export const PUBLISHER = keyPair('publisher');
export const REGISTRY = keyPair('registry');
export const REGISTRY_NAME = 'pypi.org';

export function artifact(i: number, overrides: Partial<Artifact> = {}): Artifact {
  const version = `1.0.${i}`;
  return {
    ecosystem: 'pypi',
    name: 'requests',
    version,
    filename: `requests-${version}-py3-none-any.whl`,
    sha256: createHash('sha256').update(`content ${i}`).digest('hex'),
    ...overrides,
  };
}

export function sign(a: Artifact, publisher = PUBLISHER, registry = REGISTRY, registryName = REGISTRY_NAME): Submission {
  const publisherSignature = ed25519Sign(publisher, publisherMessage(a));
  const registrySignature = ed25519Sign(registry, registryMessage(a, publisher.publicKey, publisherSignature));
  return { ...a, publisherKey: publisher.publicKey, publisherSignature, registryName, registrySignature };
}

/** The JSON body of POST /v1/entries for artifact i. */
export function submissionBody(i: number, overrides: Partial<Artifact> = {}): Record<string, unknown> {
  return formatSubmission(sign(artifact(i, overrides)));
}
