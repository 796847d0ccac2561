export * from './http.js';
export * from './profile.js';
export * from './results.js';
export * from './run.js';
export * from './swarm.js';
export * from './thresholds.js';
export * from './env.js';
