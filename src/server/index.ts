export * from './admission.js';
export * from './server.js';
