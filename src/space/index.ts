export * from './errors.js';
export * from './space.js';
