/**
 * kafkajs' request framing (`protocol/request.js`): the size, API key and version, correlation id
 * and client id, then the request's body. kafkajs 2.2.4 copies the body twice to frame it, each
 * time into a zero-filled buffer rounded up to a power of two (a 1.5 MB Produce request of outcomes
 * made two 2 MiB buffers and two copies): ~2 % of a worker's CPU in the full storm, and large
 * buffers for glibc to fragment (worker/allocator.ts). Here the frame is one buffer of the exact
 * size and the body is copied once. installKafkajsPatches (kafkajs-patches.ts) puts it in kafkajs'
 * place; test/unit/kafkajs-patches.test.ts compares the bytes with kafkajs' own.
 */

/** What kafkajs' connection passes to its request framing. */
export interface FramingArgs {
  correlationId: number;
  clientId: string | null | undefined;
  request: { apiKey: number; apiVersion: number; encode(): Promise<{ buffer: Buffer }> | { buffer: Buffer } };
}

/** The framed request, as kafkajs' connection reads it from kafkajs' own Encoder (`.buffer`). */
export interface FramedRequest {
  buf: Buffer;
  buffer: Buffer;
  size(): number;
}

export async function frameRequest({ correlationId, clientId, request: { apiKey, apiVersion, encode } }: FramingArgs): Promise<FramedRequest> {
  const body = (await encode()).buffer;
  // kafkajs writes a null client id as length -1 and no bytes.
  const clientIdBytes = clientId == null ? -1 : Buffer.byteLength(clientId, 'utf8');
  const size = 2 + 2 + 4 + 2 + Math.max(clientIdBytes, 0) + body.length;
  const buf = Buffer.allocUnsafe(4 + size);
  let at = buf.writeInt32BE(size, 0);
  at = buf.writeInt16BE(apiKey, at);
  at = buf.writeInt16BE(apiVersion, at);
  at = buf.writeInt32BE(correlationId, at);
  at = buf.writeInt16BE(clientIdBytes, at);
  if (clientIdBytes > 0) at += buf.write(clientId!, at, 'utf8');
  body.copy(buf, at);
  return { buf, buffer: buf, size: () => buf.length };
}
