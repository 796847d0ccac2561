export * from './feed.js';
export * from './live-port.js';
export * from './replay.js';
export * from './on-cluster.js';
