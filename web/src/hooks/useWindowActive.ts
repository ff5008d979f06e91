// Whether the user can be looking at the page: the tab is visible and the window
// has the focus. Messages are only marked read (and receipts sent) while it is.

import { useEffect, useState } from 'react';

export function isWindowActive(): boolean {
  return document.visibilityState === 'visible' && document.hasFocus();
}

export function useWindowActive(): boolean {
  const [active, setActive] = useState(isWindowActive);
  useEffect(() => {
    const update = () => setActive(isWindowActive());
    update();
    document.addEventListener('visibilitychange', update);
    // `focusin`: an element took the focus, so the window has it.
    document.addEventListener('focusin', update);
    window.addEventListener('focus', update);
    window.addEventListener('blur', update);
    return () => {
      document.removeEventListener('visibilitychange', update);
      document.removeEventListener('focusin', update);
      window.removeEventListener('focus', update);
      window.removeEventListener('blur', update);
    };
  }, []);
  return active;
}
