import * as crypto from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from '../support/test';
import { ENVIRONMENT, USERS } from '../support/constants';
import { expectHydrated, SAME_ORIGIN_JSON, signIn } from '../support/console';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on a free loopback port: records each POST, answers 200. */
async function startReceiver(): Promise<{ url: string; got: Received[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What a receiver checks (Standard Webhooks), computed here with Node's own HMAC. */
function signature(secret: string, r: Received): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signed = `${r.headers['webhook-id']}.${r.headers['webhook-timestamp']}.${r.body}`;
  return `v1,${crypto.createHmac('sha256', key).update(signed).digest('base64')}`;
}

// An admin subscribes a receiver to production's release requests, a release is
// requested, the delivery shows in the log with the receiver's 200, and
// Redeliver sends the same message again.
test('an admin adds a webhook, sees its delivery in the log and redelivers it', async ({ page }) => {
  const receiver = await startReceiver();
  try {
    await signIn(page, USERS.admin);
    await page.goto(`/environments/${ENVIRONMENT}/webhooks`);
    await expectHydrated(page);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText(`Webhooks of ${ENVIRONMENT}`);

    // A loopback receiver is refused until private targets are allowed.
    await page.getByTestId('webhook-url').fill(receiver.url);
    await page.getByTestId('webhook-event-release.requested').check();
    await page.getByTestId('webhook-add').click();
    await expect(page.getByTestId('action-error')).toContainText('private');
    await expect(page.locator(`section[data-testid="webhook"]:has-text("${receiver.url}")`)).toHaveCount(0);

    await page.getByTestId('webhook-url').fill(receiver.url);
    await page.getByTestId('webhook-event-release.requested').check();
    await page.getByTestId('webhook-allow-private').check();
    await page.getByTestId('webhook-add').click();
    const secretField = page.getByTestId('webhook-secret');
    await expect(secretField).toHaveValue(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const secret = await secretField.inputValue();
    const hook = page.getByTestId('webhook').filter({ hasText: receiver.url });
    await expect(hook).toContainText('release.requested');
    await expect(hook.getByTestId('no-deliveries')).toBeVisible();

    // The event: a release requested for production.
    const made = await page.request.post('/api/request_release', {
      form: { environment: ENVIRONMENT, version: 'v2', notes: 'e2e: a webhook event', migration_sql: '' },
      headers: SAME_ORIGIN_JSON,
    });
    expect(made.ok(), await made.text()).toBeTruthy();

    await expect.poll(() => receiver.got.length, { timeout: 20_000 }).toBe(1);
    const first = receiver.got[0];
    expect(first.headers['webhook-signature']).toBe(signature(secret, first));
    expect(JSON.parse(first.body)).toMatchObject({
      type: 'release.requested',
      data: { environment: ENVIRONMENT, version: 'v2' },
    });

    // The log shows it delivered, with the receiver's answer.
    const rows = hook.getByTestId('delivery');
    await expect(async () => {
      await page.getByTestId('webhooks-refresh').click();
      await expect(rows.first()).toHaveAttribute('data-status', 'delivered', { timeout: 1_000 });
    }).toPass({ timeout: 20_000 });
    await expect(rows).toHaveCount(1);
    await expect(rows.first().getByTestId('delivery-answer')).toHaveText('200');

    // Redeliver: a second delivery of the same message.
    await rows.first().getByTestId('redeliver').click();
    await expect(page.getByTestId('action-result').filter({ hasText: 'queued' })).toBeVisible();
    await expect.poll(() => receiver.got.length, { timeout: 20_000 }).toBe(2);
    const again = receiver.got[1];
    expect(again.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expect(again.body).toBe(first.body);
    expect(again.headers['webhook-signature']).toBe(signature(secret, again));
    await expect(async () => {
      await page.getByTestId('webhooks-refresh').click();
      await expect(rows).toHaveCount(2, { timeout: 1_000 });
      await expect(rows.nth(0)).toHaveAttribute('data-status', 'delivered', { timeout: 1_000 });
    }).toPass({ timeout: 20_000 });

    // Shown once: a reload never shows the secret.
    await page.reload();
    await expectHydrated(page);
    await expect(page.getByTestId('webhook-secret')).toHaveCount(0);
    expect(await page.content()).not.toContain(secret.slice(6));

    // Removed after a confirmation; later files get no deliveries.
    await hook.getByTestId('webhook-remove-open').click();
    await hook.getByTestId('webhook-remove').click();
    await expect(page.getByTestId('action-result').filter({ hasText: 'removed' })).toBeVisible();
    await expect(page.getByTestId('webhook').filter({ hasText: receiver.url })).toHaveCount(0);
  } finally {
    await receiver.close();
  }
});
