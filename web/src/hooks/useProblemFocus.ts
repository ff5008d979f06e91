// Focus follows each new problem of a form: to the field it names, or to the submit
// button for the node's answer (`form`). A new problem object each time moves focus
// again, even to the same field.

import { useEffect, type RefObject } from 'react';

export function useProblemFocus<F extends string>(
  problem: { field: F | 'form' } | null,
  fields: Record<F, RefObject<HTMLInputElement | null>>,
  submit: RefObject<HTMLButtonElement | null>,
) {
  useEffect(() => {
    if (!problem) return;
    // Only a new problem moves focus; `fields` is rebuilt each render, its refs stable.
    (problem.field === 'form' ? submit : fields[problem.field]).current?.focus();
  }, [problem]);
}
