/** S3 object keys. Generated from ids only, never from client file names. */
export const originalKey = (tenantId: string, jobId: string): string => `originals/${tenantId}/${jobId}`;
export const resultKey = (tenantId: string, jobId: string): string => `results/${tenantId}/${jobId}.png`;
