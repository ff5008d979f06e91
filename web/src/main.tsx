import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { adoptPageToken } from './api/page';
import './styles.css';

// Before anything asks the node: the login redirect's token, out of the address bar.
adoptPageToken();

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
