import fp from 'fastify-plugin';
import { createCloudAuthClient } from './client.js';
import type { ApiName, CallOptions, CloudAuthApi } from './types.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** cloudauth-intl, metered: every call first takes a slot from the shared QPS budget. */
    cloudauth: CloudAuthApi;
  }
}

export default fp(
  async (app) => {
    const client = createCloudAuthClient({
        endpoint: app.config.CLOUDAUTH_ENDPOINT,
        accessKeyId: app.config.ALIBABA_CLOUD_ACCESS_KEY_ID,
        accessKeySecret: app.config.ALIBABA_CLOUD_ACCESS_KEY_SECRET,
        timeoutMs: app.config.CLOUDAUTH_TIMEOUT_MS,
      });

    const metered = async <T>(api: ApiName, options: CallOptions | undefined, call: () => Promise<T>): Promise<T> => {
      await app.budget.acquire(api, options?.signal ? { signal: options.signal } : {});
      return call();
    };

    app.decorate('cloudauth', {
      initialize: (request, options) => metered('Initialize', options, () => client.initialize(request, options)),
      checkResult: (request, options) => metered('CheckResult', options, () => client.checkResult(request, options)),
    } satisfies CloudAuthApi);
  },
  { name: 'cloudauth', dependencies: ['config', 'budget'] },
);
