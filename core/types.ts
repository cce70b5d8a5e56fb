/** A SHA-256 hash (32 bytes). */
export type Hash = Buffer;
