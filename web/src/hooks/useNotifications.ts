// Desktop notifications for messages that arrive while the user is not looking (the
// tab hidden or the window unfocused). Off until the user turns them on, which asks
// the browser's permission. They name the sender only, never the text: what the
// operating system's notification centre keeps stays out of the message.
//
// The choice is a preference of this browser (localStorage), not of the node: it
// holds no secret and each browser asks its own permission anyway.

import { useCallback, useState } from 'react';

const KEY = 'communitas.notifications';

/** Whether this browser can show notifications at all. */
export function notificationsSupported(): boolean {
  return typeof Notification !== 'undefined';
}

function stored(): boolean {
  try {
    return localStorage.getItem(KEY) === 'on';
  } catch {
    return false;
  }
}

export interface NotificationsState {
  /** On, and the browser allows them. */
  on: boolean;
  /** The browser refused (the user must change it in the browser's settings). */
  blocked: boolean;
  supported: boolean;
  /** Turns them on (asking permission first) or off. */
  set: (on: boolean) => Promise<void>;
  /** Shows one for a message from `name`; clicking it calls `onClick`. */
  notify: (name: string, tag: string, onClick: () => void) => void;
}

export function useNotifications(): NotificationsState {
  const supported = notificationsSupported();
  const [wanted, setWanted] = useState(() => supported && stored());
  const [permission, setPermission] = useState<NotificationPermission>(() =>
    supported ? Notification.permission : 'denied',
  );

  const set = useCallback(
    async (on: boolean) => {
      if (!supported) return;
      let allowed = Notification.permission;
      if (on && allowed === 'default') allowed = await Notification.requestPermission();
      setPermission(allowed);
      const next = on && allowed === 'granted';
      setWanted(next);
      try {
        localStorage.setItem(KEY, next ? 'on' : 'off');
      } catch {
        // A browser without storage: the choice lasts as long as the page.
      }
    },
    [supported],
  );

  const on = wanted && permission === 'granted';
  const notify = useCallback(
    (name: string, tag: string, onClick: () => void) => {
      if (!on) return;
      const shown = new Notification(`New message from ${name}`, { tag, silent: false });
      shown.onclick = () => {
        window.focus();
        onClick();
        shown.close();
      };
    },
    [on],
  );

  return { on, blocked: supported && permission === 'denied', supported, set, notify };
}
