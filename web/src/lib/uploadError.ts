// Why an upload failed, in the user's terms.

import { ApiError, errorMessage } from '../api/client';
import { formatSize } from './format';

/** The reason an upload failed: the node's own words, except for a file over its
 * limit, which is said with sizes the user can act on. */
export function uploadErrorText(error: unknown, file: File): string {
  if (error instanceof ApiError && error.code === 'file_too_large') {
    // The node says "the file is N bytes; the limit is M bytes".
    const limit = /limit is (\d+) bytes/.exec(error.message)?.[1];
    const max = limit ? `; your node sends files up to ${formatSize(Number(limit))}` : '';
    return `“${file.name}” (${formatSize(file.size)}) is too large to send${max}.`;
  }
  return errorMessage(error);
}
