import { useSyncExternalStore } from 'react';
import { useStore } from 'zustand';
import type { PanelStore } from '../store/panel-store.js';

// One ticker for the whole panel, so every countdown and "ago" changes on the same frame.
let tick = Date.now();
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<() => void>();

function schedule(): void {
  // Land just after each whole second, so "4s" turns into "3s" when it should and not up to 1 s late.
  timer = setTimeout(
    () => {
      tick = Date.now();
      for (const listener of listeners) listener();
      schedule();
    },
    1000 - (Date.now() % 1000) + 5,
  );
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (listeners.size === 1) {
    tick = Date.now();
    schedule();
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) clearTimeout(timer);
  };
}

const getTick = () => tick;

/**
 * The host's "now", advancing every second without waiting for a snapshot. While the panel has
 * lost the agent it stops at the last snapshot's time, so nothing counts down on stale data.
 */
export function useNow(store: PanelStore): number {
  const local = useSyncExternalStore(subscribe, getTick);
  const offset = useStore(store, (s) => s.clockOffsetMs);
  const frozenAt = useStore(store, (s) => (s.link === 'open' ? null : (s.snapshot?.now ?? null)));
  return frozenAt ?? local + offset;
}
