import { sha256Hex } from '@cutout/shared/infra';
import type { JobRecord } from '@cutout/shared/stores';
import type { WaitingReason } from '@cutout/shared/views';

/**
 * A validator for cheap polling: it changes whenever anything a client sees changes,
 * but not with the presigned URL, which is fresh on every response.
 */
export const jobEtag = (record: JobRecord, held: WaitingReason | null): string =>
  `W/"${sha256Hex(`${JSON.stringify(record)}|${held ?? ''}`).slice(0, 24)}"`;
