// Links in message text: http and https URLs become links that open outside the
// app (a new tab, no opener, no referrer). Nothing is fetched for a preview, and no
// other scheme (javascript:, data:, file:) is ever made a link.

import type { ReactNode } from 'react';

/** A run of non-space characters starting with http:// or https://. */
const URL_LIKE = /\bhttps?:\/\/[^\s<>"]+/gi;
/** Punctuation that ends a sentence rather than the URL. */
const TRAILING = /[.,;:!?'’”)\]}]+$/;

/** `candidate` without trailing punctuation (a `)` stays if the URL opened one). */
function trim(candidate: string): string {
  let url = candidate.replace(TRAILING, '');
  const rest = candidate.slice(url.length);
  if (rest.startsWith(')') && url.includes('(') && !url.includes(')')) url += ')';
  return url;
}

/** The URL if it is a well-formed http(s) one, else null. */
export function safeHref(text: string): string | null {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** `text` as text and links, in order. */
export function linkify(text: string): ReactNode[] {
  const out: ReactNode[] = [];
  let at = 0;
  for (const match of text.matchAll(URL_LIKE)) {
    const start = match.index ?? 0;
    const url = trim(match[0]);
    const href = safeHref(url);
    if (!href) continue;
    if (start > at) out.push(text.slice(at, start));
    out.push(
      <a key={start} href={href} target="_blank" rel="noopener noreferrer">
        {url}
      </a>,
    );
    at = start + url.length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}
