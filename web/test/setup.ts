import '@testing-library/jest-dom/vitest';
import { afterEach } from 'vitest';

// The app keeps the open conversation in the address bar and drafts in
// localStorage (issue 23 item 5): each test starts from a clean page.
afterEach(() => {
  if (typeof window === 'undefined') return;
  window.history.replaceState(null, '', '/');
  try {
    window.localStorage.clear();
  } catch {
    // No storage in this environment.
  }
});
