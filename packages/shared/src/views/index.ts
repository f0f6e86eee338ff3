export * from './batch-view.ts';
export * from './job-codes.ts';
export * from './job-view.ts';
export * from './quality.ts';
