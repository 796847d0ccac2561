export * from './audio.js';
export * from './close-codes.js';
export * from './errors.js';
export * from './messages.js';
