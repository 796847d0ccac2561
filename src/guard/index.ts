export * from './lag.js';
export * from './liveness.js';
export * from './origin.js';
export * from './quota.js';
export * from './rate.js';
export * from './token.js';
