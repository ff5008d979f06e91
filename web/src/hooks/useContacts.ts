// The contact list, adding and verifying contacts.

import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { Address, Contact } from '../api/types';

function byName(a: Contact, b: Contact): number {
  const an = (a.name || a.address).toLocaleLowerCase();
  const bn = (b.name || b.address).toLocaleLowerCase();
  return an.localeCompare(bn);
}

export function useContacts() {
  const api = useApi();
  const [contacts, setContacts] = useState<Contact[]>([]);
  const [loaded, setLoaded] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    try {
      const list = await api.contacts();
      setContacts([...list].sort(byName));
      setError(null);
    } catch (e) {
      setError(errorMessage(e));
    } finally {
      setLoaded(true);
    }
  }, [api]);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  /** Adds a contact by its four words; rejects with the API's error. */
  const add = useCallback(
    async (address: string, name?: string) => {
      const contact = await api.addContact(address, name);
      setContacts((list) => [...list.filter((c) => c.address !== contact.address), contact].sort(byName));
      return contact;
    },
    [api],
  );

  /** Marks a contact verified after the safety numbers were compared. */
  const verify = useCallback(
    async (address: Address) => {
      await api.verify(address);
      setContacts((list) => list.map((c) => (c.address === address ? { ...c, verified: true } : c)));
    },
    [api],
  );

  return { contacts, loaded, error, refresh, add, verify };
}
