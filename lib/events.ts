/**
 * A minimal typed event emitter. `on` returns the unsubscribe function (what the panel's
 * subscriptions want), and a listener that throws is reported rather than allowed to break
 * the emitter's caller — the connection logic must never die because a UI listener failed.
 */
export type Listener<T> = (payload: T) => void;

export class TypedEmitter<Events extends Record<string, unknown>> {
  private readonly listeners: { [K in keyof Events]?: Set<Listener<Events[K]>> } = {};

  constructor(private readonly onListenerError: (error: unknown, event: string) => void = () => {}) {}

  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners[event];
    if (!set) {
      set = new Set();
      this.listeners[event] = set;
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners[event];
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        this.onListenerError(error, String(event));
      }
    }
  }

  listenerCount(event: keyof Events): number {
    return this.listeners[event]?.size ?? 0;
  }
}
