import type { IncomingMessage, ServerResponse } from 'node:http';
import { FarmlinkError } from '../lib/errors.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from './json-depth.js';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  details: Record<string, unknown> = {},
): void {
  sendJson(res, status, { error: { code, message, ...details } });
}

/** HTTP status for each error code a request can be refused with (anything else is a 400). */
const STATUS_OF: Record<string, number> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  PAYLOAD_TOO_LARGE: 413,
  SINK_UNAVAILABLE: 503,
  SINK_CLOSED: 503,
  SINK_TIMEOUT: 504,
  SINK_WRITE_FAILED: 500,
  // A hub of several workers: the primary (or a worker it asked) did not answer in time, or is gone.
  IPC_TIMEOUT: 503,
  IPC_CLOSED: 503,
  IPC_BAD_REPLY: 500,
};

export function statusOf(error: FarmlinkError): number {
  return STATUS_OF[error.code] ?? 400;
}

/**
 * The path of a request. Origin-form targets ("/a/b?c") are cut at "?" or "#"; anything else
 * ("http://host/a", "*", garbage) goes through the URL parser, which throws on what it cannot
 * read — a BAD_REQUEST_TARGET (400) instead.
 */
export function requestPath(req: IncomingMessage): string {
  const target = req.url ?? '/';
  if (target.startsWith('/') && !target.startsWith('//')) return target.replace(/[?#].*$/s, '');
  try {
    return new URL(target).pathname;
  } catch {
    throw new FarmlinkError(
      'BAD_REQUEST_TARGET',
      `cannot read the request target "${target.slice(0, 100)}": expected a path such as /api/v1/admin/agents`,
    );
  }
}

/** One percent-encoded path segment, decoded; malformed encoding is a BAD_PATH (400), not a URIError. */
export function pathParam(segment: string, what: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new FarmlinkError(
      'BAD_PATH',
      `the ${what} in the path, "${segment.slice(0, 100)}", is not valid percent-encoding (UTF-8 bytes as %XX)`,
    );
  }
}

/**
 * Reads a JSON body of at most `limit` bytes; throws FarmlinkError PAYLOAD_TOO_LARGE (413),
 * BAD_REQUEST (not JSON) or BODY_TOO_DEEP (nested deeper than MAX_JSON_DEPTH: such a value could
 * not be serialised again to be sent on).
 */
export async function readJsonBody(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    throw new FarmlinkError('PAYLOAD_TOO_LARGE', `body of ${declared} bytes is larger than ${limit} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FarmlinkError('PAYLOAD_TOO_LARGE', `body larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new FarmlinkError('BAD_REQUEST', 'body is not valid JSON');
  }
  if (nestedDeeperThan(body, MAX_JSON_DEPTH)) {
    throw new FarmlinkError('BODY_TOO_DEEP', `body nests objects/arrays deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return body;
}
