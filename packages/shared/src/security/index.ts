export * from './upstream-options.ts';
export * from './url-guard.ts';
