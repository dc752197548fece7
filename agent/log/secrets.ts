/**
 * Secrets never reach a log destination (file, console, the panel's tail): every serialized line
 * passes through `scrub`, which blanks the secrets this process knows by value (the panel token,
 * the hub secret) and those it recognises by shape wherever they come from (JWTs, passwords in
 * URLs, `token=` parameters). The call sites redact what they log too; this is the net under them.
 */
export class SecretScrubber {
  private readonly known = new Set<string>();

  /** A value to blank wherever it appears. Short values are ignored: they would blank ordinary words. */
  add(secret: string | undefined | null): void {
    if (secret && secret.length >= 8) this.known.add(secret);
  }

  scrub(line: string): string {
    let out = line;
    for (const secret of this.known) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out.replace(JWT, REDACTED).replace(URL_PASSWORD, `$1${REDACTED}@`).replace(TOKEN_PARAM, `$1${REDACTED}`);
  }
}

export const REDACTED = '[redacted]';

// header.payload.signature, each base64url; the header of every JWT starts with `{"` → `eyJ`.
const JWT = /eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{10,}/g;
// scheme://user:password@host — the user stays (it says which account), the password goes.
const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@"']*:)[^\s@"'/]+@/gi;
// ?token=…, #token=…, &key=… in URLs and in the panel's address.
const TOKEN_PARAM = /([?#&](?:token|access_token|key|secret|password)=)[^&\s"'#]+/gi;

/** The scrubber the loggers of this process share, so a secret registered once is blanked in every log. */
export const processSecrets = new SecretScrubber();
