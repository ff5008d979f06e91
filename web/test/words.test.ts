import { describe, expect, it } from 'vitest';
import { completeWord, isAddressWord, splitWords, suggest, wordAt, WORDS } from '../src/lib/words';

describe('address word list', () => {
  it('is the 4096 words of the Rust crate, sorted', () => {
    expect(WORDS).toHaveLength(4096);
    expect(WORDS[0]).toBe('abacus');
    expect(WORDS[4095]).toBe('zoom');
    expect([...WORDS].sort()).toEqual(WORDS);
  });

  it('finds the word under the caret between any separators', () => {
    expect(wordAt('tiger mosa', 10)).toEqual({ start: 6, end: 10, prefix: 'mosa' });
    expect(wordAt('tiger-mosaic.LEM', 16)).toEqual({ start: 13, end: 16, prefix: 'lem' });
    expect(wordAt('tiger-mosaic', 8)).toEqual({ start: 6, end: 12, prefix: 'mo' });
    expect(wordAt('tiger-', 6)).toEqual({ start: 6, end: 6, prefix: '' });
  });

  it('suggests words starting with the prefix, and nothing for a finished word', () => {
    expect(suggest('zo')).toEqual(['zodiac', 'zombie', 'zone', 'zoning', 'zoom']);
    expect(suggest('ZON')).toEqual(['zone', 'zoning']);
    expect(suggest('zoom')).toEqual([]);
    expect(suggest('')).toEqual([]);
    expect(suggest('qqq')).toEqual([]);
    expect(suggest('a', 3)).toHaveLength(3);
  });

  it('completes the current word and adds a hyphen until there are four', () => {
    expect(completeWord('tiger-mos', 9, 'mosaic')).toEqual({ value: 'tiger-mosaic-', caret: 13 });
    expect(completeWord('zo', 2, 'zodiac')).toEqual({ value: 'zodiac-', caret: 7 });
    // The fourth word needs no separator after it.
    expect(completeWord('tiger mosaic lemon waf', 22, 'wafer')).toEqual({ value: 'tiger mosaic lemon wafer', caret: 24 });
    // A word in the middle is replaced whole; what follows is kept.
    expect(completeWord('tiger-mo-lemon-wafer', 8, 'mosaic')).toEqual({ value: 'tiger-mosaic-lemon-wafer', caret: 12 });
  });

  it('splits and checks words as the node does', () => {
    expect(splitWords(' tiger--mosaic. lemon_wafer ')).toEqual(['tiger', 'mosaic', 'lemon', 'wafer']);
    expect(isAddressWord('Tiger')).toBe(true);
    expect(isAddressWord('mosai')).toBe(true); // five letters identify a word
    expect(isAddressWord('mos')).toBe(false);
    expect(isAddressWord('tigr')).toBe(false);
  });
});
