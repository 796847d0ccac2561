export * from './live-port.js';
export * from './replay.js';
