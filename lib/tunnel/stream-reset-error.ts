import { FarmlinkError } from '../errors.js';

/** A stream ended abnormally: the RST code (StreamResetCode) for programs, the reason for people. */
export class StreamResetError extends FarmlinkError {
  declare readonly code: 'STREAM_RESET';
  readonly resetCode: number;
  readonly reason: string;

  constructor(resetCode: number, reason: string) {
    super('STREAM_RESET', `stream reset (code ${resetCode}): ${reason}`);
    this.name = 'StreamResetError';
    this.resetCode = resetCode;
    this.reason = reason;
  }
}
