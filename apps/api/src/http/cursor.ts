import type { ListPosition } from '@cutout/shared/stores';
import { ApiError } from './errors.ts';

/** Cursors are opaque to clients: base64url of the last item's position. */
export const encodeCursor = (position: ListPosition): string =>
  Buffer.from(`${position.createdMs}:${position.id}`).toString('base64url');

export function decodeCursor(cursor: string): ListPosition {
  const match = /^(\d{1,16}):(job_[0-9A-Za-z]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new ApiError('invalid_cursor', 'The cursor is not one this API returned');
  return { createdMs: Number(match[1]), id: match[2]! };
}

/** Cursors over a list read by position (a batch's items): the offset, opaque to clients. */
export const encodeOffsetCursor = (offset: number): string => Buffer.from(`o${offset}`).toString('base64url');

export function decodeOffsetCursor(cursor: string | undefined): number {
  if (cursor === undefined) return 0;
  const offset = Number(/^o(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'))?.[1] ?? NaN);
  if (!Number.isInteger(offset)) throw new ApiError('invalid_cursor', 'The cursor is not one this API returned');
  return offset;
}

const MAX_PAGE = 100;

/** `?limit=` as a page size of 1 to 100; 400 otherwise. */
export function pageSizeOf(limit: string): number {
  const pageSize = Number(limit);
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE)
    throw new ApiError('invalid_request', `limit must be 1 to ${MAX_PAGE}`);
  return pageSize;
}
