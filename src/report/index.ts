export * from './report.js';
export * from './charts.js';
export * from './html.js';
export * from './write.js';
export * from './compare.js';
