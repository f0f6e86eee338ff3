import type { ListPosition } from '@cutout/shared';
import { ApiError } from './errors.ts';

/** Cursors are opaque to clients: base64url of the last item's position. */
export const encodeCursor = (position: ListPosition): string => Buffer.from(`${position.createdMs}:${position.id}`).toString('base64url');

export function decodeCursor(cursor: string): ListPosition {
  const match = /^(\d{1,16}):(job_[0-9A-Za-z]{1,64})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new ApiError(400, 'invalid_cursor', 'The cursor is not one this API returned');
  return { createdMs: Number(match[1]), id: match[2]! };
}
