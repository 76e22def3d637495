/** The simulated verification page a user opens from TransactionUrl. Self-contained HTML. */
import type { Transaction } from './store.js';

export const PAGE_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'";

const STYLE = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}dl{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}dt{color:#666}
dd{margin:0;font-family:monospace;word-break:break-all}form{display:inline-block;margin-right:1rem}
button{font-size:1rem;padding:.6rem 1.6rem;border:0;border-radius:.3rem;color:#fff;cursor:pointer}
.pass{background:#2e7d32}.fail{background:#c62828}.note{color:#666;font-size:.85rem}`;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><h1>${escapeHtml(title)}</h1>${body}
<p class="note">Simulated Alibaba Cloud ID Verification (cloudauth-intl). No real identity check happens here.</p>
</body></html>`;
}

function details(transaction: Transaction): string {
  const rows: Array<[string, string]> = [
    ['Transaction', transaction.transactionId],
    ['Merchant business id', transaction.merchantBizId],
    ['Product', transaction.productCode],
    ['Document type', transaction.docType],
    ['Expires', new Date(transaction.expiresAt).toISOString()],
  ];
  return `<dl>${rows.map(([k, v]) => `<dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd>`).join('')}</dl>`;
}

export function renderVerifyPage(transaction: Transaction): string {
  const action = `/verify/${encodeURIComponent(transaction.transactionId)}/complete`;
  const button = (passed: 'Y' | 'N', label: string, css: string) =>
    `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="passed" value="${passed}">` +
    `<button type="submit" class="${css}">${label}</button></form>`;
  return layout(
    'Identity verification',
    `${details(transaction)}<p>Choose the outcome of this verification:</p>` +
      button('Y', 'Pass', 'pass') +
      button('N', 'Fail', 'fail'),
  );
}

export function renderDonePage(transaction: Transaction): string {
  const passed = transaction.outcome?.passed === 'Y';
  return layout(
    passed ? 'Verification passed' : 'Verification failed',
    `${details(transaction)}<p>You can close this page.</p>`,
  );
}

export function renderErrorPage(title: string, detail: string): string {
  return layout(title, `<p>${escapeHtml(detail)}</p>`);
}
