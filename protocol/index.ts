export * from './version.js';
export * from './close-codes.js';
export * from './messages.js';
export * from './server-url.js';
export * from './config.js';
export * from './connection-state.js';
