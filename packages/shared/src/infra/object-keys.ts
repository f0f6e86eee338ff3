/** S3 object keys. Generated from ids only, never from client file names. */
export const originalKey = (tenantId: string, jobId: string): string => `originals/${tenantId}/${jobId}`;
export const resultKey = (tenantId: string, jobId: string): string => `results/${tenantId}/${jobId}.png`;
/** Small WebP previews of a job's original and cutout, for the review page. */
export const thumbKey = (tenantId: string, jobId: string, kind: 'original' | 'cutout'): string =>
  `thumbs/${tenantId}/${jobId}/${kind}.webp`;
/** One rendition of a job's cutout; the name is checked ([a-z0-9_-]), the extension follows the format. */
export const renditionKey = (tenantId: string, jobId: string, name: string, extension: string): string =>
  `renditions/${tenantId}/${jobId}/${name}.${extension}`;
