// Issue 23 item 3: set your own presence from the web UI.

import { act, render, renderHook, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { MyStatus } from '../src/components/MyStatus';
import { usePresence } from '../src/hooks/usePresence';
import { apiError, json, mockFetch, sessionWrapper } from './helpers';

describe('your own status', () => {
  it('is read with the contacts, changed through the node, and put back if refused', async () => {
    let refuse = false;
    const { fetch, calls } = mockFetch({
      'GET /v1/presence': json(200, { status: 'online', contacts: [] }),
      'PUT /v1/presence': (call) =>
        refuse ? apiError(400, 'invalid_request', 'unknown status') : json(200, { status: (call.body as { status: string }).status }),
    });
    const { result } = renderHook(() => usePresence(), { wrapper: sessionWrapper(fetch) });
    await waitFor(() => expect(result.current.own).toBe('online'));

    await act(() => result.current.setOwn('busy'));
    expect(calls.at(-1)).toMatchObject({ method: 'PUT', url: '/v1/presence', body: { status: 'busy' } });
    expect(result.current.own).toBe('busy');
    expect(result.current.ownError).toBeNull();

    refuse = true;
    await act(() => result.current.setOwn('away'));
    expect(result.current.own).toBe('busy');
    expect(result.current.ownError).toBe('unknown status');
  });

  it('offers online, away, busy and invisible, labelled, and explains invisible', async () => {
    const onChange = vi.fn();
    const { rerender } = render(<MyStatus status="online" saving={false} error={null} onChange={onChange} />);
    const select = screen.getByRole('combobox', { name: 'Your status' });
    expect([...(select as HTMLSelectElement).options].map((o) => o.text)).toEqual(['Online', 'Away', 'Busy', 'Invisible']);
    await userEvent.setup().selectOptions(select, 'Invisible');
    expect(onChange).toHaveBeenCalledWith('offline');

    rerender(<MyStatus status="offline" saving={false} error={null} onChange={onChange} />);
    expect(screen.getByRole('combobox', { name: 'Your status' })).toHaveAccessibleDescription(/Contacts see you offline/);
    rerender(<MyStatus status="offline" saving={true} error="the node is locked" onChange={onChange} />);
    expect(screen.getByRole('combobox', { name: 'Your status' })).toBeDisabled();
    expect(screen.getByRole('alert')).toHaveTextContent('Could not change your status: the node is locked');
    rerender(<MyStatus status={null} saving={false} error={null} onChange={onChange} />);
    expect(screen.queryByRole('combobox')).toBeNull();
  });
});
