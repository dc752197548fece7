/** The panel's own link to the agent (not the agent's link to the hub). */
export type LinkStatus = 'connecting' | 'open' | 'closed' | 'unauthorized';
