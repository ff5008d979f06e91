// A four-word address field that completes the word being typed from the address
// word list (ARIA combobox with a listbox of suggestions).
//
// Keys: ↓/↑ choose a suggestion, Enter or Tab takes it, Escape closes the list.

import { useId, useLayoutEffect, useRef, useState, type ChangeEvent, type KeyboardEvent } from 'react';
import { completeWord, isAddressWord, splitWords, suggest, wordAt, WORDS_PER_ADDRESS } from '../lib/words';

interface Props {
  id?: string;
  value: string;
  onChange: (value: string) => void;
  /** Extra ids for `aria-describedby` (an error message). */
  describedBy?: string;
  invalid?: boolean;
  autoFocus?: boolean;
}

export function AddressInput({ id, value, onChange, describedBy, invalid, autoFocus }: Props) {
  const ownId = useId();
  const inputId = id ?? `${ownId}-input`;
  const listId = `${ownId}-list`;
  const hintId = `${ownId}-hint`;
  const input = useRef<HTMLInputElement>(null);
  const [caret, setCaret] = useState(value.length);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const pendingCaret = useRef<number | null>(null);

  const options = open ? suggest(wordAt(value, caret).prefix) : [];
  const expanded = options.length > 0;
  const activeIndex = Math.min(active, options.length - 1);

  // Put the caret after a completed word once React has written the new value.
  useLayoutEffect(() => {
    if (pendingCaret.current !== null && input.current) {
      input.current.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
    }
  });

  const trackCaret = () => setCaret(input.current?.selectionStart ?? value.length);

  const onInput = (e: ChangeEvent<HTMLInputElement>) => {
    onChange(e.target.value);
    setCaret(e.target.selectionStart ?? e.target.value.length);
    setOpen(true);
    setActive(0);
  };

  const accept = (word: string) => {
    const next = completeWord(value, caret, word);
    onChange(next.value);
    setCaret(next.caret);
    pendingCaret.current = next.caret;
    setActive(0);
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (!expanded) {
      if (e.key === 'ArrowDown') {
        setOpen(true);
        setActive(0);
      }
      return;
    }
    const chosen = options[activeIndex];
    switch (e.key) {
      case 'ArrowDown':
        e.preventDefault();
        setActive((activeIndex + 1) % options.length);
        break;
      case 'ArrowUp':
        e.preventDefault();
        setActive((activeIndex - 1 + options.length) % options.length);
        break;
      case 'Enter':
      case 'Tab':
        if (chosen && !e.shiftKey) {
          e.preventDefault();
          accept(chosen);
        }
        break;
      case 'Escape':
        // Close the list only; a second Escape reaches the dialog.
        e.preventDefault();
        setOpen(false);
        break;
    }
  };

  const words = splitWords(value);
  const unknown = words.filter((w, i) => !isAddressWord(w) && (i < words.length - 1 || !expanded));
  const hint =
    unknown.length > 0
      ? `Not in the word list: ${unknown.join(', ')}`
      : `${Math.min(words.length, WORDS_PER_ADDRESS)} of ${WORDS_PER_ADDRESS} words${words.length > WORDS_PER_ADDRESS ? ' (too many)' : ''}`;

  return (
    <div className="combobox">
      <input
        ref={input}
        id={inputId}
        type="text"
        role="combobox"
        aria-autocomplete="list"
        aria-expanded={expanded}
        aria-controls={listId}
        aria-activedescendant={expanded ? `${listId}-${activeIndex}` : undefined}
        aria-describedby={[hintId, describedBy].filter(Boolean).join(' ')}
        aria-invalid={invalid || undefined}
        autoComplete="off"
        autoCapitalize="none"
        autoCorrect="off"
        spellCheck={false}
        placeholder="e.g. tiger-mosaic-lemon-wafer"
        value={value}
        onChange={onInput}
        onKeyDown={onKeyDown}
        onSelect={trackCaret}
        onClick={trackCaret}
        onFocus={() => setOpen(true)}
        onBlur={() => setOpen(false)}
        data-autofocus={autoFocus || undefined}
      />
      <ul id={listId} role="listbox" aria-label="Matching words" className="suggestions" hidden={!expanded}>
        {options.map((word, i) => {
          const prefix = wordAt(value, caret).prefix;
          return (
            <li
              key={word}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === activeIndex}
              className={i === activeIndex ? 'suggestion active' : 'suggestion'}
              // mousedown, not click: the input must keep focus.
              onMouseDown={(e) => {
                e.preventDefault();
                accept(word);
              }}
            >
              <strong>{word.slice(0, prefix.length)}</strong>
              {word.slice(prefix.length)}
            </li>
          );
        })}
      </ul>
      <p id={hintId} className={unknown.length > 0 ? 'hint hint-warning' : 'hint'}>
        {hint}
      </p>
    </div>
  );
}
