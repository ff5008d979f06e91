// The 4096 address words, taken at build time from the Rust crate that owns them,
// and the pure functions behind the address autocomplete.
//
// Invariants of the list (tested in crates/types): lowercase ASCII, sorted, unique in
// the first five letters, no word a prefix of another.

import wordsText from '../../../crates/types/src/address/words.txt?raw';

export const WORDS: readonly string[] = wordsText
  .split(/\r?\n/)
  .map((w) => w.trim())
  .filter(Boolean);

/** Words in an address. */
export const WORDS_PER_ADDRESS = 4;

/** What the node accepts between words (crates/types `Address::from_str`). */
const SEPARATOR = /[\s.\-_]/;

export interface WordAt {
  /** Where the word under the caret starts. */
  start: number;
  /** Where it ends (the next separator, or the end of the text). */
  end: number;
  /** What is typed of it before the caret, lowercased. */
  prefix: string;
}

/** The word the caret is in (or just after), from the last separator before it. */
export function wordAt(value: string, caret: number): WordAt {
  let start = Math.min(caret, value.length);
  while (start > 0 && !SEPARATOR.test(value.charAt(start - 1))) start -= 1;
  let end = Math.min(caret, value.length);
  while (end < value.length && !SEPARATOR.test(value.charAt(end))) end += 1;
  return { start, end, prefix: value.slice(start, caret).toLowerCase() };
}

/** Words of the list starting with `prefix`, at most `limit`. Nothing to offer for an
 * empty prefix or one that already is the only match. */
export function suggest(prefix: string, limit = 8): string[] {
  const p = prefix.toLowerCase();
  if (!p) return [];
  const out: string[] = [];
  for (const word of WORDS) {
    if (word.startsWith(p)) {
      out.push(word);
      if (out.length === limit) break;
    } else if (out.length > 0) {
      break; // The list is sorted: the matches are contiguous.
    }
  }
  return out.length === 1 && out[0] === p ? [] : out;
}

/** The words of a typed address, in any case and with any separators. */
export function splitWords(value: string): string[] {
  return value.split(/[\s.\-_]+/).filter(Boolean);
}

/** Replaces the word under the caret with `word`; while the address is not complete,
 * adds a hyphen so the next word can be typed straight away. */
export function completeWord(value: string, caret: number, word: string): { value: string; caret: number } {
  const { start, end } = wordAt(value, caret);
  const before = value.slice(0, start);
  const after = value.slice(end);
  let inserted = word;
  const wordsSoFar = splitWords(before).length + 1;
  if (wordsSoFar < WORDS_PER_ADDRESS && !SEPARATOR.test(after.charAt(0))) {
    inserted += '-';
  }
  return { value: before + inserted + after, caret: before.length + inserted.length };
}

/** Whether the node will accept `typed` as a word: a word of the list, or its first
 * five letters or more. */
export function isAddressWord(typed: string): boolean {
  const t = typed.toLowerCase();
  if (t.length >= 5) return WORDS.some((w) => w.startsWith(t));
  return WORDS.includes(t);
}
