import type { IncomingMessage, ServerResponse } from 'node:http';
import { FarmlinkError } from '../agent/errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

export function sendError(res: ServerResponse, status: number, code: string, message: string, details: Record<string, unknown> = {}): void {
  sendJson(res, status, { error: { code, message, ...details } });
}

/** Reads a JSON body of at most `limit` bytes; throws FarmlinkError BAD_REQUEST / PAYLOAD_TOO_LARGE. */
export async function readJsonBody(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FarmlinkError('PAYLOAD_TOO_LARGE', `body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new FarmlinkError('BAD_REQUEST', 'body is not valid JSON');
  }
}
