// The contact list, adding and verifying contacts.

import { useCallback, useEffect, useState } from 'react';
import { errorMessage } from '../api/client';
import { useApi } from '../api/session';
import type { Address, Contact, ServerEvent } from '../api/types';

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

  /** Renames a contact (`null` clears the name); rejects with the API's error. */
  const rename = useCallback(
    async (address: Address, name: string | null) => {
      const contact = await api.renameContact(address, name);
      setContacts((list) => list.map((c) => (c.address === address ? contact : c)).sort(byName));
    },
    [api],
  );

  /** Removes a contact; its conversation stays. Rejects with the API's error. */
  const remove = useCallback(
    async (address: Address) => {
      await api.removeContact(address);
      setContacts((list) => list.filter((c) => c.address !== address));
    },
    [api],
  );

  /** A contact changed on this node, perhaps from another client (the CLI, a
   * second browser): the list is read again. */
  const handleEvent = useCallback(
    (event: ServerEvent) => {
      if (event.type === 'contact') void refresh();
    },
    [refresh],
  );

  return { contacts, loaded, error, refresh, add, verify, rename, remove, handleEvent };
}
