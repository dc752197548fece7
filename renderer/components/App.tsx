import { useStore } from 'zustand';
import type { PanelStore } from '../store/panel-store.js';

/** Placeholder until the panel's widgets land. */
export function App({ store }: { store: PanelStore }) {
  const snapshot = useStore(store, (s) => s.snapshot);
  return <main>{snapshot ? <h1 data-testid="state">{snapshot.state.phase}</h1> : <p>Connecting to the agent…</p>}</main>;
}
