export * from './audio.js';
export * from './close-codes.js';
export * from './errors.js';
export * from './messages.js';
export * from './api.js';
export * from './issues.js';
export * from './cluster.js';
