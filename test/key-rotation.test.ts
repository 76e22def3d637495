/**
 * Rotating the keys that seal personal data at rest: after a switch, `npm run keys:reseal` re-seals
 * every user id and result details with the active key, so the old one can be removed.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Sealer } from '../src/privacy/cipher.js';
import { resealAll } from '../src/privacy/reseal.js';
import { clientFor } from './helpers/client.js';
import { signToken } from './helpers/jwt.js';
import { rowsOf } from './helpers/rows.js';
import { META_INFO, randomId, waitFor, withStack } from './helpers/stack.js';

const key = (id: string) => `${id}:${randomBytes(32).toString('base64')}`;

test('user ids and details sealed with the old key are re-sealed with the new one; the old key can then go', async () => {
  const [k1, k2] = [key('k1'), key('k2')];
  await withStack({ env: { KYC_STORE_RESULT_DETAILS: 'true', KYC_DETAILS_KEYS: k1 } }, async (stack) => {
    const api = clientFor(stack);
    const subs = [randomId('alice-'), randomId('bob-')];
    const ids: string[] = [];
    for (const sub of subs) {
      const res = await api.start(await signToken(sub), { metaInfo: META_INFO });
      ids.push(String(res.body.merchantBizId));
      await api.sim.complete(String(res.body.transactionId), 'Y', '200');
    }
    const rows = rowsOf(stack.app);
    await waitFor('details stored', async () => ((await Promise.all(ids.map(rows.session))).every((r) => r.detailsCiphertext) ? true : undefined));
    for (const id of ids) assert.deepEqual([(await rows.session(id)).userIdKeyId, (await rows.session(id)).detailsKeyId], ['k1', 'k1']);

    // Step 3 of the runbook: k2 is active everywhere. Then the command.
    const rotated = new Sealer({ ...stack.config, KYC_DETAILS_KEYS: [k1, k2], KYC_DETAILS_KEY_ID: 'k2' });
    const first = await resealAll(stack.app.pgPool, rotated);
    assert.ok(first.resealed.user_id_ciphertext >= 2 && first.resealed.details_ciphertext >= 2, JSON.stringify(first));
    assert.equal(first.unreadable, 0);
    const again = await resealAll(stack.app.pgPool, rotated);
    assert.deepEqual(again.resealed, { user_id_ciphertext: 0, details_ciphertext: 0 }, 'idempotent');

    // Step 4: without k1, every row still opens.
    const withoutK1 = new Sealer({ ...stack.config, KYC_DETAILS_KEYS: [k2], KYC_DETAILS_KEY_ID: 'k2' });
    for (const [i, id] of ids.entries()) {
      const row = await rows.session(id);
      assert.deepEqual([row.userIdKeyId, row.detailsKeyId], ['k2', 'k2']);
      assert.equal(withoutK1.open({ keyId: 'k2', ciphertext: Buffer.from(row.userIdCiphertext!) }, row.id), subs[i]);
      assert.match(withoutK1.open({ keyId: 'k2', ciphertext: Buffer.from(row.detailsCiphertext!) }, row.id), /extIdInfo/);
    }
    // A row sealed with a key that is not configured is left as it is, and reported.
    const lost = new Sealer({ ...stack.config, KYC_DETAILS_KEYS: [key('k3')], KYC_DETAILS_KEY_ID: 'k3' });
    assert.ok((await resealAll(stack.app.pgPool, lost)).unreadable >= 4);
    assert.equal((await rows.session(ids[0]!)).userIdKeyId, 'k2');
  });
});
