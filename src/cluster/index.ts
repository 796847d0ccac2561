export * from './cluster.js';
export * from './haproxy.js';
export * from './process.js';
export * from './redis.js';
export * from './targets.js';
export * from './redis-bus.js';
