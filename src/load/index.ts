export * from './http.js';
export * from './profile.js';
export * from './results.js';
export * from './run.js';
export * from './swarm.js';
