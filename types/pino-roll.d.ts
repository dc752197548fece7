declare module 'pino-roll' {
  interface PinoRollOptions {
    file: string | (() => string);
    size?: string | number;
    frequency?: string | number;
    extension?: string;
    symlink?: boolean;
    mkdir?: boolean;
    limit?: { count?: number; removeOtherLogFiles?: boolean };
    dateFormat?: string;
    sync?: boolean;
    /** Passed to SonicBoom: the mode of each log file it creates. */
    mode?: number;
  }
  /** The SonicBoom stream pino-roll returns, as much of it as FarmLink uses. */
  interface RollStream {
    write(chunk: string): boolean;
    end(): void;
    readonly destroyed: boolean;
    once(event: 'close' | 'error', listener: (...args: unknown[]) => void): this;
  }
  export default function pinoRoll(options: PinoRollOptions): Promise<RollStream>;
}
