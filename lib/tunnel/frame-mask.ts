/**
 * WebSocket masking for the tunnel socket. RFC 6455 makes a client mask every frame with a random key
 * so that a transparent proxy on the way cannot be fooled into caching attacker-chosen bytes that look
 * like HTTP. Masking costs a copy and an XOR of every byte the farm and the client send, and the broker
 * unmasks it all again: about a tenth of the relay's CPU (bench/README.md, "Where the time went").
 *
 * Where no such proxy can read the bytes, masking protects nothing: inside TLS (wss://, the proxy sees
 * only ciphertext) and on loopback (no proxy between two processes on one machine). There the key is
 * all zeros, which `ws` recognises and skips on both ends. Plain ws:// over a network keeps the random key.
 */
export function unmaskedFramesAllowed(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol === 'wss:') return true;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `ws`'s generateMask for a zero key. */
export function zeroMask(mask: Buffer): void {
  mask.fill(0);
}
