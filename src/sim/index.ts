export * from './model.js';
export * from './port.js';
export * from './rng.js';
export * from './runner.js';
export * from './scenario.js';
