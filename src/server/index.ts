export * from './admission.js';
export * from './server.js';
export * from './replay-view.js';
export * from './timeline.js';
export * from './faults.js';
