import type { Writable } from 'node:stream';

/**
 * The console as a log destination that can go away at any time: `farmlink agent | head -3`
 * closes the pipe, a terminal hangs up, a service manager closes stderr. The first failed write
 * (EPIPE, EIO, a destroyed stream) drops the console for good and tells whoever listens, so the
 * other destinations (the log file, the panel's tail) go on. Without this the stream's 'error'
 * event is an uncaught exception, and the line that reports it fails the same way.
 */
export interface ConsoleSink {
  write(text: string): void;
  /** The error that dropped the console, once it is dropped. */
  readonly droppedBy: Error | undefined;
  /** Called once, when the console is dropped (at once if it already is). */
  onDropped(listener: (error: Error) => void): void;
}

class StreamSink implements ConsoleSink {
  droppedBy: Error | undefined;
  private readonly listeners: Array<(error: Error) => void> = [];

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on('error', (error: Error) => this.drop(error));
  }

  write(text: string): void {
    if (this.droppedBy) return;
    const stream = this.stream as Partial<Writable> & NodeJS.WritableStream;
    if (stream.destroyed || stream.writableEnded) {
      this.drop(Object.assign(new Error('the console stream is closed'), { code: 'ERR_STREAM_DESTROYED' }));
      return;
    }
    try {
      stream.write(text);
    } catch (error) {
      this.drop(error as Error);
    }
  }

  onDropped(listener: (error: Error) => void): void {
    if (this.droppedBy) listener(this.droppedBy);
    else this.listeners.push(listener);
  }

  private drop(error: Error): void {
    if (this.droppedBy) return;
    this.droppedBy = error;
    for (const listener of this.listeners.splice(0)) {
      try {
        listener(error);
      } catch {
        // A listener that fails cannot bring the console back; the others still hear of it.
      }
    }
  }
}

// One sink per stream: the loggers of one process (agent, hub, start) share stdout, and all of
// them stop writing when it goes.
const sinks = new WeakMap<NodeJS.WritableStream, ConsoleSink>();

export function consoleSink(stream: NodeJS.WritableStream): ConsoleSink {
  let sink = sinks.get(stream);
  if (!sink) {
    sink = new StreamSink(stream);
    sinks.set(stream, sink);
  }
  return sink;
}
