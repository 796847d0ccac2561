export * from './ogg.js';
export * from './opus.js';
export * from './voice.js';
